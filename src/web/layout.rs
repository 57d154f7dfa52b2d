//! What the base template needs on every page.

use super::viewer::Viewer;

pub struct Layout {
    pub viewer: Viewer,
    pub title: String,
    /// Load the diagram renderer (only lessons with mermaid blocks pay for it).
    pub diagrams: bool,
}

impl Layout {
    pub fn new(viewer: Viewer, title: impl Into<String>) -> Layout {
        Layout {
            viewer,
            title: title.into(),
            diagrams: false,
        }
    }

    pub fn asset(&self, path: &str) -> String {
        self.viewer.site.asset(path)
    }

    pub fn has_asset(&self, path: &str) -> bool {
        self.viewer.site.has(path)
    }

    pub fn highlight_css(&self) -> String {
        self.viewer.site.highlight_css_url()
    }

    pub fn dev(&self) -> bool {
        self.viewer.site.dev
    }

    pub fn csrf(&self) -> &str {
        &self.viewer.csrf_token
    }

    pub fn user_name(&self) -> Option<&str> {
        self.viewer.user.as_ref().map(|u| u.display_name.as_str())
    }

    pub fn is_staff(&self) -> bool {
        self.viewer.is_staff()
    }
}
