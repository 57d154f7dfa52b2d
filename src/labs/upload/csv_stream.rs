//! A streaming CSV aggregator: bytes go in as they arrive, a [`CsvSummary`] comes out at the end.
//!
//! This is the one reference of the upload lab: the live service feeds it the body of an upload
//! chunk by chunk, and the graded challenge computes its expected answers with it.
//!
//! How data flows: [`CsvAggregator::push`] hands each chunk to a `csv-core` push parser, which
//! copies the unescaped bytes of the current record into a reusable buffer and reports when a
//! record is complete. A complete record is decoded, checked against the header and folded into
//! per-column running totals, then forgotten. Chunks may split the input anywhere (inside a
//! quoted field, between the CR and LF of a CRLF, inside a multi-byte UTF-8 character): nothing
//! is decoded before its whole record is in the buffer. Memory therefore depends on the widest
//! record and the header, never on the length of the input.
//!
//! Semantics, which the challenge's learners reproduce in JavaScript:
//!
//! - Records end at LF, CR or CRLF outside quotes; a quoted field may hold commas, newlines and
//!   doubled quotes (`""` for one `"`). A completely empty line is skipped.
//! - A UTF-8 byte order mark at the very start of the input is dropped.
//! - The first record is the header; every later record is a data row. A row whose field count
//!   differs from the header's is *invalid*: it is counted, the physical line where it starts
//!   is remembered for the first [`MAX_INVALID_LINES`] of them, and its values are ignored.
//! - Physical lines are counted on the raw bytes, quoted or not: LF, CRLF and a lone CR each
//!   end one line, and the header's first byte is on line 1 (blank lines before it count).
//! - Field bytes are decoded as UTF-8 the way `String::from_utf8_lossy` does: each invalid
//!   sequence becomes one U+FFFD. Lengths are in Unicode code points of the decoded text.
//! - A column is numeric when it has at least one non-empty value and every non-empty value
//!   matches `^-?[0-9]+(\.[0-9]+)?$`; its sum adds the values as IEEE doubles in row order, so
//!   any correct implementation gets the same bits. A number with hundreds of digits parses to
//!   infinity, which JSON cannot carry (serde writes `null`).
//! - A record longer than [`MAX_RECORD_BYTES`] of field data (or with more than
//!   [`MAX_RECORD_FIELDS`] fields) is not buffered: it counts as an invalid row. If that record
//!   is the header, the summary has no columns and every row is invalid.

use csv_core::{ReadRecordResult, Reader};
use serde::{Deserialize, Serialize};

/// The widest record whose field data is kept; a longer one counts as invalid.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The most fields a kept record may have (its field-end table is 8 bytes per field).
pub const MAX_RECORD_FIELDS: usize = MAX_RECORD_BYTES / 8;
/// How many line numbers of invalid rows the summary lists.
pub const MAX_INVALID_LINES: usize = 10;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const INITIAL_FIELD_BYTES: usize = 1024;
const INITIAL_FIELDS: usize = 64;

/// What an input added up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsvSummary {
    /// The header record, byte order mark stripped.
    pub columns: Vec<String>,
    /// Data records after the header, valid or not.
    pub rows: u64,
    /// Data records whose field count differs from the header's.
    pub invalid_rows: u64,
    /// The physical line (header = line 1) where each of the first invalid records starts.
    pub first_invalid_lines: Vec<u64>,
    /// One entry per header column, in order, computed from valid records only.
    pub stats: Vec<ColumnStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnStats {
    pub name: String,
    /// Non-empty values.
    pub filled: u64,
    /// Present when every non-empty value is a plain decimal number and there is at least one.
    pub numeric: Option<NumericStats>,
    /// The longest value, in Unicode code points.
    pub longest: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// Running totals of one column while rows stream past.
#[derive(Debug, Clone)]
struct ColumnAcc {
    name: String,
    filled: u64,
    /// False once a non-empty value failed the number grammar.
    all_numeric: bool,
    numeric: Option<NumericStats>,
    longest: u64,
}

impl ColumnAcc {
    fn new(name: String) -> Self {
        Self {
            name,
            filled: 0,
            all_numeric: true,
            numeric: None,
            longest: 0,
        }
    }

    fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        self.filled += 1;
        self.longest = self.longest.max(value.chars().count() as u64);
        if !self.all_numeric {
            return;
        }
        match parse_plain_number(value) {
            Some(n) => {
                self.numeric = Some(match self.numeric.take() {
                    None => NumericStats {
                        sum: n,
                        min: n,
                        max: n,
                    },
                    Some(s) => NumericStats {
                        sum: s.sum + n,
                        min: if n < s.min { n } else { s.min },
                        max: if n > s.max { n } else { s.max },
                    },
                });
            }
            None => {
                self.all_numeric = false;
                self.numeric = None;
            }
        }
    }

    fn finish(self) -> ColumnStats {
        ColumnStats {
            name: self.name,
            filled: self.filled,
            numeric: if self.all_numeric { self.numeric } else { None },
            longest: self.longest,
        }
    }
}

/// `^-?[0-9]+(\.[0-9]+)?$` parsed as the nearest double; anything else is `None`.
pub fn parse_plain_number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return None;
    }
    text.parse().ok()
}

/// Counts physical lines over a byte stream cut anywhere: LF, CRLF and lone CR each end one.
#[derive(Debug, Clone, Copy, Default)]
struct LineCounter {
    /// Line terminators seen so far.
    ended: u64,
    /// Whether the last byte seen was CR (so a following LF belongs to it).
    after_cr: bool,
}

impl LineCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' => self.ended += 1,
                b'\n' if !self.after_cr => self.ended += 1,
                _ => {}
            }
            self.after_cr = b == b'\r';
        }
    }

    /// The 1-based line the next byte is on.
    fn current_line(&self) -> u64 {
        self.ended + 1
    }
}

/// Feeds on CSV bytes, keeps only the current record and the per-column totals.
#[derive(Debug)]
pub struct CsvAggregator {
    parser: Reader,
    /// The first bytes of the input, held back until there are enough to tell whether they are
    /// a byte order mark (`csv-core` only strips one it sees whole in its first call).
    head: Vec<u8>,
    head_done: bool,
    /// Input bytes of a byte order mark the parser has still to consume; they start no record.
    bom_left: usize,
    /// The unescaped field data of the record being read, and where each field ends in it.
    fields: Vec<u8>,
    fields_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// The current record outgrew the caps: its data is being discarded.
    oversize: bool,
    /// Whether the parser is between records (so a byte that is not CR/LF starts one).
    between_records: bool,
    lines: LineCounter,
    record_line: u64,
    header: Option<Option<Vec<ColumnAcc>>>,
    rows: u64,
    invalid_rows: u64,
    first_invalid_lines: Vec<u64>,
}

impl Default for CsvAggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvAggregator {
    pub fn new() -> Self {
        Self {
            parser: Reader::new(),
            head: Vec::with_capacity(UTF8_BOM.len()),
            head_done: false,
            bom_left: 0,
            fields: vec![0; INITIAL_FIELD_BYTES],
            fields_len: 0,
            ends: vec![0; INITIAL_FIELDS],
            ends_len: 0,
            oversize: false,
            between_records: true,
            lines: LineCounter::default(),
            record_line: 1,
            header: None,
            rows: 0,
            invalid_rows: 0,
            first_invalid_lines: Vec::new(),
        }
    }

    /// Takes the next bytes of the input, cut anywhere.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.head_done {
            self.feed(chunk);
            return;
        }
        let wanted = UTF8_BOM.len() - self.head.len();
        let (to_head, rest) = chunk.split_at(wanted.min(chunk.len()));
        self.head.extend_from_slice(to_head);
        if self.head.len() == UTF8_BOM.len() {
            self.release_head();
            self.feed(rest);
        }
    }

    /// Data records completed so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the input (it may lack a final newline) and returns the totals.
    pub fn finish(mut self) -> CsvSummary {
        if !self.head_done {
            self.release_head();
        }
        // An empty input tells the parser the stream ended; it answers with the last record,
        // if one was open, and then with `End`.
        while !self.step(&[]).1 {}
        let stats = self
            .header
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(ColumnAcc::finish)
            .collect::<Vec<_>>();
        CsvSummary {
            columns: stats.iter().map(|s| s.name.clone()).collect(),
            rows: self.rows,
            invalid_rows: self.invalid_rows,
            first_invalid_lines: self.first_invalid_lines,
            stats,
        }
    }

    fn release_head(&mut self) {
        self.head_done = true;
        if self.head == UTF8_BOM {
            self.bom_left = UTF8_BOM.len();
        }
        let head = std::mem::take(&mut self.head);
        self.feed(&head);
    }

    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let (nin, _) = self.step(input);
            input = &input[nin..];
        }
    }

    /// One parser call; returns the input bytes consumed and whether the stream has ended.
    fn step(&mut self, input: &[u8]) -> (usize, bool) {
        let (result, nin, nout, nend) = self.parser.read_record(
            input,
            &mut self.fields[self.fields_len..],
            &mut self.ends[self.ends_len..],
        );
        self.track_lines(&input[..nin]);
        self.fields_len += nout;
        self.ends_len += nend;
        match result {
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull => {
                if self.fields.len() < MAX_RECORD_BYTES {
                    let grown = (self.fields.len() * 2).min(MAX_RECORD_BYTES);
                    self.fields.resize(grown, 0);
                } else {
                    // Past the cap: keep parsing the record but overwrite its data.
                    self.oversize = true;
                    self.fields_len = 0;
                }
            }
            ReadRecordResult::OutputEndsFull => {
                if self.ends.len() < MAX_RECORD_FIELDS {
                    let grown = (self.ends.len() * 2).min(MAX_RECORD_FIELDS);
                    self.ends.resize(grown, 0);
                } else {
                    self.oversize = true;
                    self.ends_len = 0;
                }
            }
            ReadRecordResult::Record => {
                self.complete_record();
                self.between_records = true;
            }
            ReadRecordResult::End => return (nin, true),
        }
        (nin, false)
    }

    /// Notes where a record starts: the first byte after the previous record that is neither a
    /// line terminator (blank lines are skipped) nor part of the byte order mark.
    fn track_lines(&mut self, consumed: &[u8]) {
        let bom = self.bom_left.min(consumed.len());
        self.bom_left -= bom;
        let mut rest = &consumed[bom..];
        if self.between_records
            && let Some(start) = rest.iter().position(|&b| b != b'\r' && b != b'\n')
        {
            self.lines.feed(&rest[..start]);
            self.record_line = self.lines.current_line();
            self.between_records = false;
            rest = &rest[start..];
        }
        self.lines.feed(rest);
    }

    fn complete_record(&mut self) {
        let oversize = std::mem::take(&mut self.oversize);
        let ends = &self.ends[..self.ends_len];
        let data = &self.fields[..self.fields_len];
        let field_values = || {
            let mut start = 0;
            ends.iter().map(move |&end| {
                let value = String::from_utf8_lossy(&data[start..end]);
                start = end;
                value
            })
        };
        match &mut self.header {
            None => {
                self.header = Some(
                    (!oversize)
                        .then(|| field_values().map(|name| ColumnAcc::new(name.into_owned())))
                        .map(Iterator::collect),
                );
            }
            Some(columns) => {
                self.rows += 1;
                let width = columns.as_ref().map_or(0, Vec::len);
                match columns {
                    Some(columns) if !oversize && ends.len() == width => {
                        for (column, value) in columns.iter_mut().zip(field_values()) {
                            column.add(&value);
                        }
                    }
                    _ => {
                        self.invalid_rows += 1;
                        if self.first_invalid_lines.len() < MAX_INVALID_LINES {
                            self.first_invalid_lines.push(self.record_line);
                        }
                    }
                }
            }
        }
        self.fields_len = 0;
        self.ends_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summarize_chunked(input: &[u8], chunk: usize) -> CsvSummary {
        let mut agg = CsvAggregator::new();
        for piece in input.chunks(chunk.max(1)) {
            agg.push(piece);
        }
        agg.finish()
    }

    fn summarize(input: &str) -> CsvSummary {
        summarize_chunked(input.as_bytes(), usize::MAX)
    }

    /// The same semantics computed from a whole-buffer parse with the `csv` crate.
    fn summarize_with_csv_crate(input: &[u8]) -> CsvSummary {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        let mut columns: Option<Vec<ColumnAcc>> = None;
        let (mut rows, mut invalid_rows, mut first_invalid_lines) = (0, 0, Vec::new());
        while reader
            .read_byte_record(&mut record)
            .expect("in-memory input")
        {
            let values: Vec<String> = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            let Some(columns) = columns.as_mut() else {
                columns = Some(values.into_iter().map(ColumnAcc::new).collect());
                continue;
            };
            rows += 1;
            if values.len() == columns.len() {
                for (column, value) in columns.iter_mut().zip(&values) {
                    column.add(value);
                }
                continue;
            }
            invalid_rows += 1;
            if first_invalid_lines.len() < MAX_INVALID_LINES {
                // The position is where the previous record ended: skip the blank lines.
                let from = record.position().expect("positioned").byte() as usize;
                let start = from
                    + input[from..]
                        .iter()
                        .position(|&b| b != b'\r' && b != b'\n')
                        .unwrap_or(0);
                let mut lines = LineCounter::default();
                lines.feed(&input[..start]);
                first_invalid_lines.push(lines.current_line());
            }
        }
        let stats: Vec<ColumnStats> = columns
            .unwrap_or_default()
            .into_iter()
            .map(ColumnAcc::finish)
            .collect();
        CsvSummary {
            columns: stats.iter().map(|s| s.name.clone()).collect(),
            rows,
            invalid_rows,
            first_invalid_lines,
            stats,
        }
    }

    #[test]
    fn quoted_fields_keep_commas_newlines_and_doubled_quotes() {
        let s = summarize("name,note\r\n\"Smith, J\",\"line one\nline \"\"two\"\"\"\r\nAl,x\r\n");
        assert_eq!(s.columns, ["name", "note"]);
        assert_eq!(s.rows, 2);
        assert_eq!(s.invalid_rows, 0);
        assert_eq!(s.stats[0].longest, 8);
        assert_eq!(
            s.stats[1].longest,
            "line one\nline \"two\"".chars().count() as u64
        );
    }

    #[test]
    fn numeric_columns_sum_in_row_order_and_others_do_not() {
        let s = summarize("a,b,c\n1,x,\n-2.5,3,\n0.1,4,\n");
        assert_eq!(
            s.stats[0].numeric,
            Some(NumericStats {
                sum: 1.0 + -2.5 + 0.1,
                min: -2.5,
                max: 1.0
            })
        );
        assert_eq!(s.stats[1].numeric, None, "x is not a number");
        assert_eq!(
            s.stats[2].numeric, None,
            "an all-empty column has no numbers"
        );
        assert_eq!(s.stats[2].filled, 0);
    }

    #[test]
    fn only_the_strict_number_grammar_counts() {
        for text in [
            "1e5", "+1", ".5", "5.", "1.2.3", " 1", "0x10", "-", "NaN", "inf",
        ] {
            assert_eq!(parse_plain_number(text), None, "{text:?}");
        }
        assert_eq!(parse_plain_number("-007.50"), Some(-7.5));
        assert_eq!(parse_plain_number("12"), Some(12.0));
    }

    #[test]
    fn invalid_rows_are_counted_with_the_line_they_start_on() {
        let s = summarize("a,b\n1,2\n\n\"multi\nline\",3,4\n5\n6,7");
        assert_eq!(s.rows, 4);
        assert_eq!(s.invalid_rows, 2);
        assert_eq!(s.first_invalid_lines, [4, 6]);
        assert_eq!(s.stats[0].filled, 2, "invalid rows add nothing");
        assert_eq!(s.stats[0].numeric.as_ref().map(|n| n.sum), Some(7.0));
    }

    #[test]
    fn lone_carriage_returns_end_lines_too() {
        let s = summarize("a,b\r1\r2,3\r\n4\r");
        assert_eq!(s.first_invalid_lines, [2, 4]);
    }

    #[test]
    fn only_the_first_ten_invalid_lines_are_listed() {
        let input = format!("a,b\n{}", "x\n".repeat(25));
        let s = summarize(&input);
        assert_eq!(s.invalid_rows, 25);
        assert_eq!(s.first_invalid_lines, (2..12).collect::<Vec<u64>>());
    }

    #[test]
    fn a_byte_order_mark_is_stripped_even_when_cut_into_single_bytes() {
        let input = "\u{FEFF}id,name\n1,é\n";
        for chunk in 1..=4 {
            let s = summarize_chunked(input.as_bytes(), chunk);
            assert_eq!(s.columns, ["id", "name"], "chunk size {chunk}");
            assert_eq!(s.stats[1].longest, 1);
        }
    }

    #[test]
    fn a_multibyte_character_cut_between_chunks_is_one_character() {
        let input = "w\n€😀\n".as_bytes();
        for cut in 0..input.len() {
            let mut agg = CsvAggregator::new();
            agg.push(&input[..cut]);
            agg.push(&input[cut..]);
            let s = agg.finish();
            assert_eq!(s.stats[0].longest, 2, "cut at {cut}");
        }
    }

    #[test]
    fn invalid_utf8_counts_one_replacement_character_per_bad_sequence() {
        let s = summarize_chunked(b"h\nab\xFF\xC3(\n", 1);
        assert_eq!(s.stats[0].longest, 5, "a b \u{FFFD} \u{FFFD} (");
    }

    #[test]
    fn rows_reports_progress_as_records_complete() {
        let mut agg = CsvAggregator::new();
        agg.push(b"a\n1\n2");
        assert_eq!(agg.rows(), 1, "the last row is still open");
        agg.push(b"\n");
        assert_eq!(agg.rows(), 2);
        assert_eq!(agg.finish().rows, 2);
    }

    #[test]
    fn empty_input_gives_an_empty_summary() {
        let s = summarize("");
        assert!(s.columns.is_empty() && s.stats.is_empty());
        assert_eq!(s.rows, 0);
        assert_eq!(summarize("\r\n\n"), s);
    }

    #[test]
    fn a_record_over_the_cap_is_invalid_and_memory_stays_bounded() {
        let mut agg = CsvAggregator::new();
        agg.push(b"a,b\n1,2\n\"");
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            agg.push(&block);
        }
        agg.push(b"\",y\n3,4\n");
        assert!(agg.fields.len() <= MAX_RECORD_BYTES);
        let s = agg.finish();
        assert_eq!(s.rows, 3);
        assert_eq!(s.invalid_rows, 1);
        assert_eq!(s.first_invalid_lines, [3]);
        assert_eq!(s.stats[0].numeric.map(|n| n.sum), Some(4.0));
        assert_eq!(s.stats[1].longest, 1, "the oversize value is not counted");
    }

    #[test]
    fn many_empty_fields_hit_the_field_cap_not_the_memory() {
        let mut agg = CsvAggregator::new();
        agg.push(b"a\n");
        agg.push(&vec![b','; MAX_RECORD_FIELDS * 2]);
        agg.push(b"\n7\n");
        assert!(agg.ends.len() <= MAX_RECORD_FIELDS);
        let s = agg.finish();
        assert_eq!((s.rows, s.invalid_rows), (2, 1));
    }

    #[test]
    fn the_summary_serializes_in_camel_case() {
        let s = summarize("a\n1\n");
        let json = serde_json::to_value(&s).expect("serializes");
        assert_eq!(json["invalidRows"], 0);
        assert_eq!(json["firstInvalidLines"], serde_json::json!([]));
        assert_eq!(json["stats"][0]["numeric"]["sum"], 1.0);
        let back: CsvSummary = serde_json::from_value(json).expect("round-trips");
        assert_eq!(back, s);
    }

    /// A CSV document built from pieces that stress the parser, plus chunk cut points.
    fn csv_document() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            Just(String::new()),
            "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
            "[a-z ]{1,6}",
            "[a-zé€😀,\"\r\n]{1,6}",
        ];
        let field = (value, any::<bool>()).prop_map(|(v, quote)| {
            let needs = v.contains([',', '"', '\r', '\n']);
            if quote || needs {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v
            }
        });
        let newline = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        let record = (prop::collection::vec(field, 1..5), newline.clone())
            .prop_map(|(fields, nl)| format!("{}{nl}", fields.join(",")));
        let header = prop::collection::vec("[a-z]{1,4}", 1..5);
        (
            any::<bool>(),
            header,
            newline,
            prop::collection::vec(record, 0..12),
            any::<bool>(),
            prop::collection::vec(prop_oneof![Just(""), Just("\n"), Just("\r\n")], 0..3),
        )
            .prop_map(|(bom, header, nl, records, final_newline, blanks)| {
                let mut doc = String::new();
                if bom {
                    doc.push('\u{FEFF}');
                }
                doc.push_str(&header.join(","));
                doc.push_str(nl);
                doc.push_str(&blanks.concat());
                for r in records {
                    doc.push_str(&r);
                }
                if !final_newline {
                    while doc.ends_with(['\r', '\n']) {
                        doc.pop();
                    }
                }
                doc.into_bytes()
            })
    }

    proptest! {
        #[test]
        fn every_chunking_gives_the_whole_buffer_answer(
            doc in csv_document(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let expected = summarize_with_csv_crate(&doc);
            prop_assert_eq!(&summarize_chunked(&doc, usize::MAX), &expected);
            prop_assert_eq!(&summarize_chunked(&doc, 1), &expected);
            prop_assert_eq!(&summarize_chunked(&doc, 2), &expected);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(doc.len() + 1)).collect();
            points.sort_unstable();
            let mut agg = CsvAggregator::new();
            let mut from = 0;
            for p in points.into_iter().chain([doc.len()]) {
                agg.push(&doc[from..p]);
                from = p;
            }
            prop_assert_eq!(&agg.finish(), &expected);
        }
    }
}
