//! The plain-text log line and field format of `--log-format text` when stderr is not a terminal (a log
//! file, journald, a container log): the same fields and layout as `tracing_subscriber`'s default
//! "full" format, written without its styling machinery.
//!
//! The default formatters style the level, span names and field names through `nu_ansi_term`
//! even with colours off; on a discovery request that was a sixth of our CPU
//! (docs/performance.md, "request log"). The line is
//! `TIME LEVEL span{fields}:span{fields}: target: fields`, e.g.
//! `2026-01-01T00:00:00.000000Z  INFO request{request_id="…" method=GET path=/jwks}:
//! wecom_oidc::web::request_log: request status=200 latency_ms=0`.

//!
//! [`LogWriter`] is where the lines go: stderr, with the per-request access lines (and only
//! those) collected in a buffer written out when it fills or every [`ACCESS_LOG_FLUSH_EVERY`];
//! every other line writes the buffer and itself through at once. Like nginx's buffered
//! `access_log`, a `kill -9` can lose the last access lines; warnings, errors, start-up and
//! shutdown lines are never held back, and the login-event log is a store record, made durable
//! with the credential it records, not a log line.

use std::fmt;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub mod context;

/// The plain-text event format (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainText;

impl<S, N> FormatEvent<S, N> for PlainText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A record of the `log` crate (sled, rustls, tokio-postgres) under its own target and
        // level, as the default format shows it, not as `log` with `log.*` fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        LineTime.format_time(&mut writer)?;
        // The pieces go out with `write_str`, not `write!`: the formatting machinery was a
        // third of the line's cost (docs/performance.md).
        writer.write_str(padded_level(meta.level()))?;
        // A request's context comes first, where its span would be the root
        // (`context` module docs).
        let mut any = context::write_current(&mut writer)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(&fields.fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
        }
        if any {
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The level as `" {:>5} "` writes it.
fn padded_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        _ => " ERROR ",
    }
}

/// The time of a line, as `tracing_subscriber`'s `SystemTime` writes it (RFC 3339 in UTC with
/// microseconds, `2026-01-01T00:00:00.000000Z`), with the date and time of day kept per thread
/// for the current second: turning a timestamp into a calendar date for every line was a
/// sixth of the access line's cost (docs/performance.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct LineTime;

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: std::cell::Cell<(u64, [u8; 20])> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
}

impl FormatTime for LineTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        Self::write(w)
    }
}

impl LineTime {
    /// Writes the time of a line written now.
    fn write(w: &mut impl fmt::Write) -> fmt::Result {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) if since.as_secs() < YEAR_10000 => write_line_time(w, since),
            // Before 1970 or after 9999: the general formatter.
            _ => SystemTime.format_time(&mut Writer::new(w)),
        }
    }
}

/// Seconds from 1970 to 10000-01-01, where the fixed-width form ends.
const YEAR_10000: u64 = 253_402_300_800;

fn write_line_time(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    let secs = since_epoch.as_secs();
    let prefix = SECOND.with(|cached| {
        let (second, text) = cached.get();
        if second == secs {
            return text;
        }
        let text = second_text(secs);
        cached.set((secs, text));
        text
    });
    // ASCII digits and separators only.
    w.write_str(std::str::from_utf8(&prefix).map_err(|_| fmt::Error)?)?;
    let micros = since_epoch.subsec_micros();
    let mut digits = [b'0'; 7];
    let mut rest = micros;
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    digits[6] = b'Z';
    w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS.` of `secs` after 1970 (below [`YEAR_10000`]), in UTC.
fn second_text(secs: u64) -> [u8; 20] {
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    // Below YEAR_10000, so the day count fits an i64 and the date is positive.
    let (year, month, day) = crate::clock::civil_from_days(days as i64);
    let (year, month, day) = (year as u64, month as u64, day as u64);
    let mut out = *b"0000-00-00T00:00:00.";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day % 3600 / 60);
    put(17, 2, of_day % 60);
    out
}

/// The plain-text field format: `name=value` separated by spaces, strings quoted, the message
/// first and bare; the same text as `tracing_subscriber`'s default field format with colours off.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut staged = Staged {
            out: writer,
            buf: [0; STAGED_BYTES],
            len: 0,
        };
        let mut visitor = PlainVisitor {
            writer: &mut staged,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result?;
        staged.flush()
    }
}

/// Bytes of field text collected before they are written on.
const STAGED_BYTES: usize = 256;

/// The fields' text collected on the stack and written on in one piece: a span's fields go
/// into a new `String` (`FormattedFields`), which grew by reallocation four times when each
/// piece was written to it directly (docs/performance.md, "the middleware as one service").
/// Longer text is written on in pieces, in order; the bytes written are the same either way.
struct Staged<'writer> {
    out: Writer<'writer>,
    buf: [u8; STAGED_BYTES],
    len: usize,
}

impl Staged<'_> {
    fn flush(&mut self) -> fmt::Result {
        let text = &self.buf[..self.len];
        self.len = 0;
        // Only whole `&str`s were copied in, so the bytes are UTF-8.
        self.out
            .write_str(std::str::from_utf8(text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Write for Staged<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > STAGED_BYTES {
            self.flush()?;
            if s.len() > STAGED_BYTES {
                return self.out.write_str(s);
            }
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

struct PlainVisitor<'a, 'writer> {
    writer: &'a mut Staged<'writer>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_, '_> {
    /// Writes the separator and, unless `field` is the message, `name=`; false once a write
    /// failed. The pieces go out with `write_str`: a `write!` of the separator, name and value
    /// together was the largest cost of a discovery request's log line.
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        let name = field.name();
        if name.starts_with("log.") {
            // A `log` record's metadata, shown as the line's target (`format_event`).
            return false;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            self.writer.write_str(sep)
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            (self.writer.write_str(sep))
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='))
        };
        self.result.is_ok()
    }

    fn is_message(field: &Field) -> bool {
        field.name() == "message"
    }
}

impl Visit for PlainVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        self.result = if Self::is_message(field) {
            EscapeControls(&mut *self.writer).write_str(value)
        } else if needs_no_escape(value) {
            // What `{:?}` writes for such a string, without escaping it char by char.
            (self.writer.write_char('"'))
                .and_then(|()| self.writer.write_str(value))
                .and_then(|()| self.writer.write_char('"'))
        } else {
            write!(self.writer, "{value:?}")
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = write_decimal(self.writer, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = (if value < 0 {
                self.writer.write_char('-')
            } else {
                Ok(())
            })
            .and_then(|()| write_decimal(self.writer, value.unsigned_abs()));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.start(field) {
            self.result = if Self::is_message(field) {
                write!(EscapeControls(&mut *self.writer), "{value:?}")
            } else {
                write!(self.writer, "{value:?}")
            };
        }
    }
}

/// A message's text with the control characters a terminal acts on escaped (ESC, BEL, BS, FF,
/// DEL as `\x1b` …, C1 controls as `\u{9b}` …), as the default format escapes a message: a log
/// read with `less -R` or `cat` cannot have its lines recoloured or rewritten by text a client
/// chose. Other fields are written with `{:?}`, which escapes them already.
struct EscapeControls<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for EscapeControls<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let acts = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        if !s.chars().any(acts) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c if acts(c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Whether `{:?}` of `s` is `s` in quotes: printable ASCII without `"` or `\`.
fn needs_no_escape(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `value` in decimal, as `{}` writes it.
fn write_decimal(w: &mut impl fmt::Write, mut value: u64) -> fmt::Result {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // ASCII digits only.
    w.write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

/// The target of the per-request access line ([`crate::web::request_log`]): the one kind of
/// line that is buffered.
const ACCESS_LOG_TARGET: &str = "wecom_oidc::web::request_log";

/// Buffered access lines are written out once they reach this many bytes.
const ACCESS_LOG_BUFFER: usize = 32 * 1024;

/// Buffered access lines are written out at least this often.
pub const ACCESS_LOG_FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The log sink: stderr (or any writer, in tests), with access lines buffered (module docs).
/// Cheap to clone; clones share one buffer.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Mutex<Sink>>,
    buffer_access_lines: bool,
}

struct Sink {
    out: Box<dyn Write + Send>,
    pending: Vec<u8>,
}

impl Sink {
    fn write_pending(&mut self) {
        if !self.pending.is_empty() {
            // A log line that cannot be written has nowhere else to go: drop it.
            let _ = self.out.write_all(&self.pending);
            self.pending.clear();
        }
        let _ = self.out.flush();
    }
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("buffer_access_lines", &self.buffer_access_lines)
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    /// Lines to stderr. With `buffer_access_lines` (a log file or pipe, not a person at a
    /// terminal), access lines are buffered and a thread writes them out every
    /// [`ACCESS_LOG_FLUSH_EVERY`].
    pub fn stderr(buffer_access_lines: bool) -> Self {
        let writer = Self::new(Box::new(std::io::stderr()), buffer_access_lines);
        if buffer_access_lines {
            let weak = Arc::downgrade(&writer.shared);
            // Best effort: without the thread, lines still go out when the buffer fills and
            // with the next line that is not an access line.
            let _ = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(move || loop {
                    std::thread::sleep(ACCESS_LOG_FLUSH_EVERY);
                    let Some(shared) = weak.upgrade() else { return };
                    shared
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .write_pending();
                });
        }
        writer
    }

    /// Lines to `out` (tests); no background flushing.
    pub fn new(out: Box<dyn Write + Send>, buffer_access_lines: bool) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Sink {
                out,
                pending: Vec::with_capacity(if buffer_access_lines {
                    ACCESS_LOG_BUFFER
                } else {
                    0
                }),
            })),
            buffer_access_lines,
        }
    }

    /// Appends an access line that `write` formats, held back like one that went through
    /// [`LineWriter`] (module docs). Formatted straight into the buffer, under its lock: no
    /// line buffer of its own ([`context`]).
    fn append_access_line(&self, write: impl FnOnce(&mut PendingText<'_>) -> fmt::Result) {
        let mut sink = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let start = sink.pending.len();
        if write(&mut PendingText(&mut sink.pending)).is_err() {
            // Not a whole line: drop it rather than write half of it.
            sink.pending.truncate(start);
            return;
        }
        if !self.buffer_access_lines || sink.pending.len() >= ACCESS_LOG_BUFFER {
            sink.write_pending();
        }
    }

    /// Writes out every buffered line (call before the process exits).
    pub fn flush(&self) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_pending();
    }
}

/// The buffer of a [`LogWriter`] as a text sink.
struct PendingText<'a>(&'a mut Vec<u8>);

impl fmt::Write for PendingText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// One line's writer from a [`LogWriter`]: tracing-subscriber formats a line, then writes it
/// with one `write_all`.
pub struct LineWriter<'a> {
    shared: &'a Mutex<Sink>,
    buffered: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut sink = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if self.buffered {
            sink.pending.extend_from_slice(buf);
            if sink.pending.len() >= ACCESS_LOG_BUFFER {
                sink.write_pending();
            }
        } else {
            // Behind whatever is buffered, so lines keep their order.
            sink.write_pending();
            let _ = sink.out.write_all(buf);
            let _ = sink.out.flush();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            buffered: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            buffered: self.buffer_access_lines
                && *meta.level() == Level::INFO
                && meta.target() == ACCESS_LOG_TARGET,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A log sink for tests (also `context`'s).
    #[derive(Clone, Default)]
    pub(super) struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        /// Everything written so far.
        pub(super) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A subscriber writing our plain text format to `writer`, as `main` sets it up.
    fn plain_text<W>(writer: W) -> impl tracing::Subscriber
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .event_format(PlainText)
            .with_writer(writer)
            .finish()
    }

    fn logged(f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        tracing::subscriber::with_default(plain_text(move || sink.clone()), f);
        buffer.text()
    }

    #[test]
    fn a_request_line_carries_time_level_span_fields_target_and_its_own_fields() {
        let out = logged(|| {
            let span = tracing::info_span!("request", request_id = "abc", method = %"GET");
            let _e = span.enter();
            tracing::info!(status = 200u16, "request");
        });
        let (time, rest) = out.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{out}");
        assert_eq!(
            rest,
            " INFO request{request_id=\"abc\" method=GET}: wecom_oidc::logging::tests: request status=200\n"
        );
        assert!(!out.contains('\u{1b}'), "no escape codes: {out:?}");
    }

    fn line_time(secs: u64, micros: u32) -> String {
        let mut out = String::new();
        write_line_time(
            &mut out,
            Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)),
        )
        .unwrap();
        out
    }

    #[test]
    fn line_times_are_rfc3339_utc_with_microseconds_across_leap_days_and_centuries() {
        assert_eq!(line_time(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(line_time(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            line_time(951_868_799, 999_999),
            "2000-02-29T23:59:59.999999Z"
        );
        assert_eq!(line_time(4_107_542_400, 120), "2100-03-01T00:00:00.000120Z");
        assert_eq!(
            line_time(1_798_761_599, 500_000),
            "2026-12-31T23:59:59.500000Z"
        );
        // The cached second is replaced when the second changes, also going back.
        assert_eq!(line_time(1_798_761_600, 1), "2027-01-01T00:00:00.000001Z");
        assert_eq!(line_time(0, 1), "1970-01-01T00:00:00.000001Z");
        assert_eq!(line_time(YEAR_10000 - 1, 0), "9999-12-31T23:59:59.000000Z");
    }

    /// The date of `days` after 1970 counted the slow, obvious way.
    fn date_by_counting(mut days: u64) -> (u64, u64, u64) {
        let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut year = 1970;
        while days >= if leap(year) { 366 } else { 365 } {
            days -= if leap(year) { 366 } else { 365 };
            year += 1;
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 1;
        for len in lengths {
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        (year, month, days + 1)
    }

    #[test]
    fn the_calendar_date_is_right_for_every_day_of_a_400_year_cycle() {
        let mut expected = (1970, 1, 1);
        for day in 0..146_097u64 {
            if day % 4096 == 0 {
                // Re-anchor now and then on the slow count, so it stays fast.
                expected = date_by_counting(day);
            }
            let (y, m, d) = crate::clock::civil_from_days(day as i64);
            assert_eq!((y as u64, m as u64, d as u64), expected, "day {day}");
            expected = next_day(expected);
        }
    }

    fn next_day((y, m, d): (u64, u64, u64)) -> (u64, u64, u64) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        match (d < len, m < 12) {
            (true, _) => (y, m, d + 1),
            (false, true) => (y, m + 1, 1),
            (false, false) => (y + 1, 1, 1),
        }
    }

    #[test]
    fn fields_recorded_later_on_a_span_are_appended() {
        let out = logged(|| {
            let span = tracing::info_span!("request", a = 1u8, b = tracing::field::Empty);
            span.record("b", "x");
            let _e = span.enter();
            tracing::info!(r#type = "t", "m");
        });
        assert!(
            out.contains(" INFO request{a=1 b=\"x\"}: wecom_oidc::logging::tests: m type=\"t\"\n"),
            "{out}"
        );
    }

    /// The same event and span under the default field format and under ours, without time
    /// or colours: the lines must be the same, whatever the values need (quotes, escapes,
    /// non-ASCII text, signs, booleans, `Display` and `Debug` values).
    #[test]
    fn fields_read_exactly_as_the_default_format_writes_them() {
        fn line(plain: bool) -> String {
            let buffer = Buffer::default();
            let sink = buffer.clone();
            let event = || {
                let span = tracing::info_span!(
                    "request",
                    request_id = "Ab3-_x",
                    method = %"GET",
                    path = %"/a b",
                    odd = "quote\" back\\slash\ttab\u{7f}",
                    name = "张三",
                    empty = "",
                    // Longer than the staging buffer, alone and after other text.
                    long = "ab".repeat(200).as_str(),
                    near = "c".repeat(250).as_str(),
                );
                let _e = span.enter();
                tracing::info!(
                    status = 200u16,
                    big = u64::MAX,
                    zero = 0u64,
                    neg = -42i64,
                    min = i64::MIN,
                    ok = true,
                    no = false,
                    ratio = 0.5f64,
                    list = ?vec!["a", "b"],
                    r#type = "t",
                    "request {}", 7
                );
                tracing::info!(plain_message = 1u8, "done");
            };
            if plain {
                let s = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .without_time()
                    .fmt_fields(PlainFields)
                    .with_writer(move || sink.clone())
                    .finish();
                tracing::subscriber::with_default(s, event);
            } else {
                let s = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .without_time()
                    .with_writer(move || sink.clone())
                    .finish();
                tracing::subscriber::with_default(s, event);
            }
            let bytes = buffer.0.lock().unwrap().clone();
            String::from_utf8(bytes).unwrap()
        }
        let ours = line(true);
        assert_eq!(ours, line(false));
        assert!(
            ours.contains("odd=\"quote\\\" back\\\\slash\\ttab\\u{7f}\""),
            "{ours}"
        );
        assert!(
            ours.contains("big=18446744073709551615 zero=0 neg=-42 min=-9223372036854775808"),
            "{ours}"
        );
    }

    /// A `log` crate record (as sled writes one) and messages with terminal control characters
    /// read as the default format writes them: under the record's own target, without its
    /// `log.*` fields, the controls escaped.
    #[test]
    fn log_records_and_control_characters_in_messages_read_as_the_default_format_writes_them() {
        fn lines(ours: bool) -> Vec<String> {
            let buffer = Buffer::default();
            let sink = buffer.clone();
            let events = || {
                let record = tracing_log::log::Record::builder()
                    .args(format_args!("disk \x1b[2J full"))
                    .level(tracing_log::log::Level::Warn)
                    .target("sled::pagecache")
                    .module_path_static(Some("sled::pagecache"))
                    .file_static(Some("src/pagecache.rs"))
                    .line(Some(3))
                    .build();
                tracing_log::format_trace(&record).unwrap();
                tracing::warn!(
                    who = "\x1b[31m",
                    "bell \x07 c1 \u{9b}31m del \x7f {}",
                    "\x1b[0m"
                );
                tracing::warn!(message = "as a str: \x1b[1m \x08 \x0c");
            };
            if ours {
                tracing::subscriber::with_default(plain_text(move || sink.clone()), events);
            } else {
                let s = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_writer(move || sink.clone())
                    .finish();
                tracing::subscriber::with_default(s, events);
            }
            buffer
                .text()
                .lines()
                .map(|l| l.split_once(' ').expect("time first").1.to_owned())
                .collect()
        }
        let ours = lines(true);
        assert_eq!(ours, lines(false));
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert_eq!(ours[0], " WARN sled::pagecache: disk \\x1b[2J full");
        assert!(!ours.concat().contains('\x1b'), "{ours:?}");
    }

    #[test]
    fn levels_are_padded_as_the_format_string_pads_them() {
        for level in [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ] {
            assert_eq!(padded_level(&level), format!(" {:>5} ", level.as_str()));
        }
    }

    #[test]
    fn an_event_outside_spans_has_no_span_prefix() {
        let out = logged(|| tracing::warn!(error = "x", "store flush failed"));
        assert!(
            out.ends_with(" WARN wecom_oidc::logging::tests: store flush failed error=\"x\"\n"),
            "{out}"
        );
    }

    #[test]
    fn access_lines_are_buffered_and_any_other_line_writes_them_out_first() {
        let buffer = Buffer::default();
        let writer = LogWriter::new(Box::new(buffer.clone()), true);
        let text = || buffer.text();
        tracing::subscriber::with_default(plain_text(writer.clone()), || {
            tracing::info!(target: "wecom_oidc::web::request_log", status = 200u16, "request");
            assert_eq!(text(), "", "an access line waits in the buffer");
            tracing::warn!("grant revoked");
            let out = text();
            let access = out.find("status=200").expect("access line written");
            let warning = out.find("grant revoked").expect("warning written");
            assert!(access < warning, "order kept: {out}");
            tracing::info!(target: "wecom_oidc::web::request_log", status = 404u16, "request");
            assert!(!text().contains("status=404"));
        });
        writer.flush();
        assert!(text().contains("status=404"), "flush writes the rest");
    }

    #[test]
    fn without_buffering_every_line_is_written_at_once() {
        let buffer = Buffer::default();
        let writer = LogWriter::new(Box::new(buffer.clone()), false);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "wecom_oidc::web::request_log", status = 200u16, "request");
        });
        assert!(buffer.text().contains("status=200"));
    }
}
