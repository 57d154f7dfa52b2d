//! The rate-limiter lab: a demo API behind a Redis-backed limiter whose every knob the learner
//! turns from the lab page.
//!
//! How a request flows:
//!
//! 1. [`live`] identifies the learner (user id, else an anonymous cookie, or a lab key sent by
//!    curl) and reads their [`Settings`] from Redis (falling back to the last copy this process
//!    saw, so the declared failure policy still applies when Redis is gone).
//! 2. It derives the client key the limit applies to ([`KeyType`]: IP with IPv6 grouped by /56,
//!    user, or API key) and the cost of the request.
//! 3. [`service::RateLimiterLab::decide`] runs the chosen algorithm atomically in Redis
//!    ([`store`]), or — when Redis does not answer within its deadline — applies the learner's
//!    [`FailurePolicy`]: let it through, refuse it, or decide with an in-memory insurance limiter
//!    built from the pure reference implementations in [`algorithms`].
//! 4. The outcome becomes the demo API's response (IETF `RateLimit` / `RateLimit-Policy` headers,
//!    `Retry-After`, a JSON body) and an event on the learner's live stream (SSE).
//!
//! [`trace`] replays one generated trace through all five pure algorithms for the side-by-side
//! timeline. Everything Redis holds for a learner lives under
//! `<redis_prefix>rl:` plus their namespace, so learners never see each other's state.

pub mod algorithms;
pub mod challenge;
pub mod live;
pub mod service;
pub mod store;
pub mod trace;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use sha2::{Digest, Sha256};

use algorithms::{Algorithm, LimiterConfig};

pub const MAX_LIMIT: u32 = 10_000;
pub const MAX_WINDOW_SECS: u32 = 3_600;
pub const MAX_BURST: u32 = 10_000;
pub const MAX_BLOCK_SECS: u32 = 3_600;

/// What the limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// The client address; IPv6 addresses are grouped by /56 so rotating through one
    /// allocation does not buy a fresh quota.
    Ip,
    /// The learner (the logged-in user, or the anonymous visitor).
    User,
    /// The `X-API-Key` header.
    ApiKey,
}

impl KeyType {
    pub const ALL: [KeyType; 3] = [KeyType::Ip, KeyType::User, KeyType::ApiKey];

    pub fn id(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::User => "user",
            KeyType::ApiKey => "api_key",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            KeyType::Ip => "Client IP (IPv6 by /56)",
            KeyType::User => "User",
            KeyType::ApiKey => "API key (X-API-Key header)",
        }
    }

    pub fn parse(id: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// What happens when Redis cannot be reached within the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through unmetered (capacity limits: an outage of the limiter should not
    /// become an outage of the API).
    FailOpen,
    /// Refuse with 503 and `Retry-After` (security limits: logins, OTPs, spending).
    FailClosed,
    /// Decide with an in-memory limiter in this process — the same algorithm and settings, but
    /// counted per instance, so N instances allow up to N times the limit.
    Insurance,
}

impl FailurePolicy {
    pub const ALL: [FailurePolicy; 3] = [
        FailurePolicy::FailOpen,
        FailurePolicy::FailClosed,
        FailurePolicy::Insurance,
    ];

    pub fn id(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::Insurance => "insurance",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "Fail open (allow everything)",
            FailurePolicy::FailClosed => "Fail closed (503 for everything)",
            FailurePolicy::Insurance => "In-memory insurance limiter (per instance)",
        }
    }

    pub fn parse(id: &str) -> Option<FailurePolicy> {
        FailurePolicy::ALL.into_iter().find(|p| p.id() == id)
    }
}

/// One learner's lab settings, stored in Redis per learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub algorithm: Algorithm,
    /// Requests per window.
    pub limit: u32,
    pub window_secs: u32,
    /// Bucket capacity / burst tolerance (token bucket and GCRA only).
    pub burst: u32,
    /// Cost of one demo API call unless the call says otherwise (`?cost=`).
    pub cost: u32,
    pub key_type: KeyType,
    /// How long a key is refused outright after a denial (0 = no block).
    pub block_secs: u32,
    pub policy: FailurePolicy,
    /// Bumped on every save and reset; limiter keys include it, so new settings start from a
    /// clean slate and old state simply expires.
    pub rev: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            algorithm: Algorithm::SlidingLog,
            limit: 10,
            window_secs: 10,
            burst: 10,
            cost: 1,
            key_type: KeyType::Ip,
            block_secs: 0,
            policy: FailurePolicy::Insurance,
            rev: 0,
        }
    }
}

impl Settings {
    pub fn config(&self) -> LimiterConfig {
        LimiterConfig::new(self.limit, self.window_ms()).with_burst(self.burst)
    }

    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    pub fn block_ms(&self) -> u64 {
        u64::from(self.block_secs) * 1000
    }

    /// The most one request may cost: the limit, or the bucket for token bucket and GCRA.
    pub fn capacity(&self) -> u32 {
        if self.algorithm.uses_burst() {
            self.burst
        } else {
            self.limit
        }
    }

    /// Validates a submitted settings form; the error is a message for the learner.
    pub fn from_form(form: &HashMap<String, String>, rev: u64) -> Result<Settings, String> {
        let field = |name: &str| form.get(name).map(|v| v.trim()).unwrap_or("");
        let number = |name: &str, label: &str, min: u32, max: u32| -> Result<u32, String> {
            field(name)
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{label} must be a whole number from {min} to {max}."))
        };
        let algorithm = Algorithm::parse(field("algorithm"))
            .ok_or_else(|| "Choose one of the five algorithms.".to_string())?;
        let limit = number("limit", "The limit", 1, MAX_LIMIT)?;
        let window_secs = number("window_secs", "The window", 1, MAX_WINDOW_SECS)?;
        let burst = if field("burst").is_empty() {
            limit
        } else {
            number("burst", "The burst", 1, MAX_BURST)?
        };
        let key_type = KeyType::parse(field("key_type"))
            .ok_or_else(|| "Choose what the limit is counted per.".to_string())?;
        let block_secs = number("block_secs", "The block duration", 0, MAX_BLOCK_SECS)?;
        let policy = FailurePolicy::parse(field("policy"))
            .ok_or_else(|| "Choose a failure policy.".to_string())?;
        let mut settings = Settings {
            algorithm,
            limit,
            window_secs,
            burst,
            cost: 1,
            key_type,
            block_secs,
            policy,
            rev,
        };
        let capacity = settings.capacity();
        settings.cost = number("cost", "The cost", 1, capacity).map_err(|_| {
            format!(
                "The cost must be from 1 to {capacity}: a request costing more than {} can never pass.",
                if algorithm.uses_burst() {
                    "the burst"
                } else {
                    "the limit"
                }
            )
        })?;
        Ok(settings)
    }

    /// The fields stored in the learner's settings hash in Redis.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("algorithm", self.algorithm.id().to_string()),
            ("limit", self.limit.to_string()),
            ("window_secs", self.window_secs.to_string()),
            ("burst", self.burst.to_string()),
            ("cost", self.cost.to_string()),
            ("key_type", self.key_type.id().to_string()),
            ("block_secs", self.block_secs.to_string()),
            ("policy", self.policy.id().to_string()),
        ]
    }

    /// Reads a stored hash back; anything missing or out of range (an older format, a hand
    /// edit) falls back to the defaults rather than failing the request.
    pub fn from_fields(fields: &HashMap<String, String>) -> Settings {
        let rev = fields.get("rev").and_then(|r| r.parse().ok()).unwrap_or(0);
        Settings::from_form(fields, rev).unwrap_or(Settings {
            rev,
            ..Settings::default()
        })
    }

    pub fn as_form(&self) -> HashMap<String, String> {
        self.to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

/// The key an IP address is limited under: IPv4 as is, IPv6 by its /56 prefix (the smallest
/// allocation ISPs commonly hand to one customer), IPv4-mapped IPv6 as IPv4.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3] & 0xff00, 0, 0, 0, 0);
                format!("ip:{prefix}/56")
            }
        },
    }
}

/// API keys are hashed before they become part of a Redis key: the store never holds the
/// secret, and any byte a client sends is safe in a key name.
pub fn api_key_key(api_key: &str) -> String {
    let digest = Sha256::digest(api_key.as_bytes());
    format!("key:{}", hex(&digest[..8]))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut form = Settings::default().as_form();
        for (k, v) in pairs {
            form.insert(k.to_string(), v.to_string());
        }
        form
    }

    #[test]
    fn ipv6_addresses_in_one_slash_56_share_a_key() {
        let a: IpAddr = "2001:db8:ab:cd12:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:ab:cdff:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:ab:ce00::1".parse().unwrap();
        assert_eq!(ip_key(a), "ip:2001:db8:ab:cd00::/56");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        assert_eq!(ip_key("203.0.113.9".parse().unwrap()), "ip:203.0.113.9");
        assert_eq!(
            ip_key("::ffff:203.0.113.9".parse().unwrap()),
            "ip:203.0.113.9"
        );
    }

    #[test]
    fn api_keys_are_hashed_into_safe_key_names() {
        let key = api_key_key("secret}{:with odd bytes");
        assert!(key.starts_with("key:") && key.len() == 20, "{key}");
        assert!(!key.contains("secret"));
        assert_eq!(key, api_key_key("secret}{:with odd bytes"));
    }

    #[test]
    fn settings_forms_are_validated_with_messages_a_learner_can_act_on() {
        let ok = Settings::from_form(&form(&[("algorithm", "gcra"), ("burst", "4")]), 3).unwrap();
        assert_eq!(ok.algorithm, Algorithm::Gcra);
        assert_eq!((ok.burst, ok.rev), (4, 3));
        let too_big = Settings::from_form(&form(&[("limit", "100000")]), 0).unwrap_err();
        assert_eq!(too_big, "The limit must be a whole number from 1 to 10000.");
        let cost = Settings::from_form(
            &form(&[("algorithm", "token_bucket"), ("burst", "2"), ("cost", "3")]),
            0,
        )
        .unwrap_err();
        assert!(cost.contains("from 1 to 2"), "{cost}");
        assert!(Settings::from_form(&form(&[("policy", "maybe")]), 0).is_err());
        assert!(Settings::from_form(&form(&[("window_secs", "-1")]), 0).is_err());
    }

    #[test]
    fn stored_settings_round_trip_and_bad_ones_fall_back_to_defaults() {
        let settings = Settings {
            algorithm: Algorithm::TokenBucket,
            burst: 25,
            cost: 5,
            key_type: KeyType::ApiKey,
            block_secs: 30,
            policy: FailurePolicy::FailClosed,
            rev: 7,
            ..Settings::default()
        };
        let mut fields = settings.as_form();
        fields.insert("rev".into(), "7".into());
        assert_eq!(Settings::from_fields(&fields), settings);
        fields.insert("limit".into(), "lots".into());
        assert_eq!(
            Settings::from_fields(&fields),
            Settings {
                rev: 7,
                ..Settings::default()
            }
        );
    }
}
