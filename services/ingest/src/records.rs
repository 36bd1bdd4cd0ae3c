//! CSV records read within a fixed buffer. The `csv` crate grows a record's buffer to fit
//! whatever it meets, so one 400 MiB field (a 400 KB gzip) cost ingest 1.4 GB; here the
//! parser (`csv_core`, the one under `csv`) writes into buffers of a fixed size, and a record
//! that overflows them is read to its end without being kept, then reported with its line
//! and its first bytes. Memory per file is the limit, whatever the file holds.

use std::io::BufRead;

/// Most fields in one record (the canonical layout has ten).
pub const MAX_FIELDS: usize = 1024;
/// The most of an over-long record kept to say which one it was.
const KEPT_START: usize = 512;

/// What one read found.
pub enum Next {
    /// The record is in the caller's `ByteRecord`.
    Record,
    /// A record of more than the limit's bytes (or [`MAX_FIELDS`] fields), skipped: the line
    /// it starts on and its first bytes, fields joined by commas.
    TooLong { line: u64, start: String },
    /// The end of the input.
    End,
}

/// Records of one input, each within `max_record_bytes`.
pub struct BoundedRecords<R> {
    input: R,
    parser: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> BoundedRecords<R> {
    pub fn new(input: R, delimiter: u8, max_record_bytes: usize) -> BoundedRecords<R> {
        BoundedRecords {
            input,
            parser: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            fields: vec![0; max_record_bytes],
            ends: vec![0; MAX_FIELDS],
        }
    }

    /// Reads the next record into `record` (with its starting line as its position).
    pub fn read(&mut self, record: &mut csv::ByteRecord) -> std::io::Result<Next> {
        use csv_core::ReadRecordResult::*;
        record.clear();
        let line = self.parser.line();
        let mut position = csv::Position::new();
        position.set_line(line);
        record.set_position(Some(position));
        let (mut out, mut ends) = (0, 0);
        let mut too_long: Option<String> = None;
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written, ended) =
                self.parser
                    .read_record(input, &mut self.fields[out..], &mut self.ends[ends..]);
            self.input.consume(read);
            out += written;
            ends += ended;
            match result {
                InputEmpty => {}
                OutputFull | OutputEndsFull => {
                    // Keep the start once, then let the rest of the record pass through.
                    too_long.get_or_insert_with(|| self.start(out, ends));
                    (out, ends) = (0, 0);
                }
                Record => {
                    if let Some(start) = too_long {
                        return Ok(Next::TooLong { line, start });
                    }
                    let mut field_start = 0;
                    for &end in &self.ends[..ends] {
                        record.push_field(&self.fields[field_start..end]);
                        field_start = end;
                    }
                    return Ok(Next::Record);
                }
                End => return Ok(Next::End),
            }
        }
    }

    /// The line the parser is at (for messages about the input).
    pub fn line(&self) -> u64 {
        self.parser.line()
    }

    /// The first bytes of the record in the buffer, fields joined by commas.
    fn start(&self, out: usize, ends: usize) -> String {
        let mut start = Vec::with_capacity(KEPT_START);
        let mut field_start = 0;
        for &end in self.ends[..ends].iter().chain(std::iter::once(&out)) {
            if !start.is_empty() {
                start.push(b',');
            }
            start.extend_from_slice(&self.fields[field_start..end.max(field_start)]);
            field_start = end;
            if start.len() >= KEPT_START {
                break;
            }
        }
        start.truncate(KEPT_START);
        String::from_utf8_lossy(&start).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], max: usize) -> Vec<String> {
        let mut records = BoundedRecords::new(text, b',', max);
        let mut record = csv::ByteRecord::new();
        let mut seen = Vec::new();
        loop {
            match records.read(&mut record) {
                Ok(Next::Record) => seen.push(format!(
                    "{}:{}",
                    record.position().map_or(0, |p| p.line()),
                    String::from_utf8_lossy(record.as_slice())
                )),
                Ok(Next::TooLong { line, start }) => seen.push(format!("{line}:too long:{start}")),
                Ok(Next::End) => return seen,
                Err(error) => panic!("{error}"),
            }
        }
    }

    /// What the `csv` crate reads from the same input, as `line:fields`.
    fn read_with_csv(text: &[u8]) -> Vec<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let mut seen = Vec::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            seen.push(format!(
                "{}:{}",
                record.position().map_or(0, |p| p.line()),
                String::from_utf8_lossy(record.as_slice())
            ));
        }
        seen
    }

    #[test]
    fn records_and_their_lines_are_those_of_the_csv_crate() {
        // Checkpoints store lines, so a file resumed by a newer ingest must skip the same rows.
        for text in [
            &b"a,b\n1,2\n\n\"x\ny\",3\n4,5"[..],
            b"\xef\xbb\xbfa,b\r\n1,\"q\"\"q\"\r\n\r\n\r\n2,3\r\n",
            b"a\n\n\nb,c,d\n\"unterminated,\n",
            b"",
        ] {
            assert_eq!(read_all(text, 64), read_with_csv(text), "{text:?}");
        }
    }

    #[test]
    fn a_record_past_the_limit_is_skipped_and_the_next_one_read() {
        let long = "A".repeat(10_000);
        let text = format!("a,b\n1,\"{long}\n{long}\",tail\n2,3\n");
        let seen = read_all(text.as_bytes(), 256);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen[1].starts_with("2:too long:1,AAAA"), "{}", seen[1]);
        assert!(seen[1].len() < 600);
        assert_eq!(seen[2], "4:23");
    }

    #[test]
    fn too_many_fields_is_too_long() {
        let text = format!("a\n{}\nb\n", ",".repeat(MAX_FIELDS + 5));
        let seen = read_all(text.as_bytes(), 1 << 16);
        assert!(seen[1].starts_with("2:too long:"), "{seen:?}");
        assert_eq!(seen[2], "3:b");
    }
}
