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

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

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
        let meta = event.metadata();
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", meta.level().as_str())?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The plain-text field format: `name=value` separated by spaces, strings quoted, the message
/// first and bare; the same text as `tracing_subscriber`'s default field format with colours off.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        let name = field.name();
        self.result = if name == "message" {
            write!(self.writer, "{sep}{value:?}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{sep}{name}={value:?}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .event_format(PlainText)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
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

    #[test]
    fn an_event_outside_spans_has_no_span_prefix() {
        let out = logged(|| tracing::warn!(error = "x", "store flush failed"));
        assert!(
            out.ends_with(" WARN wecom_oidc::logging::tests: store flush failed error=\"x\"\n"),
            "{out}"
        );
    }
}
