//! A request's log context and its access line without a `tracing` span, for the plain-text
//! format.
//!
//! Every log line of a request carries `request{request_id="…" method=GET path=/x}:` and every
//! request ends with an access line. As a `tracing` span, that context cost a slot in the
//! registry, its extension map and a formatted `String` per request, and the access line went
//! through the subscriber's event dispatch and field visitors: together a quarter of a
//! discovery request (docs/performance.md, "the request's log context"). When the installed
//! subscriber formats with [`PlainText`], the edge instead keeps the context as its text, made
//! current on the thread while the request's future runs ([`RequestContext::enter`]), and
//! [`PlainText`] writes it where the span's name and fields would go; with a [`LogWriter`] as
//! well, the access line is written straight into the writer's buffer. The bytes are the same
//! as the span and the event would give (tests below). Any other format (JSON, the terminal's
//! colours) gets the span as before: its layout of spans is its own.
//!
//! Filter directives on a span's name or fields (`[request]=debug`, `[{request_id=…}]=debug`)
//! do not see a context that is not a span; directives on targets and levels apply as before
//! (the access line is written only when `wecom_oidc::web::request_log` is enabled at INFO).
//! The context is the thread's while the request's future runs, not a parent of spans: a span
//! made during a request but entered later, elsewhere, no longer shows it (none of ours is).

use std::cell::Cell;
use std::fmt;

use tracing::Level;

use super::{padded_level, write_decimal, LineTime, LogWriter, PlainText, ACCESS_LOG_TARGET};

thread_local! {
    /// The context of the request whose future this thread is running; empty outside one.
    static CURRENT: Cell<String> = const { Cell::new(String::new()) };
}

/// The text a request's span would show, `request{request_id="…" method=GET path=/x}`, and the
/// subscriber's [`LogWriter`] the access line goes straight into, if it has one.
#[derive(Debug)]
pub struct RequestContext {
    text: String,
    writer: Option<LogWriter>,
}

impl RequestContext {
    /// The context of a request with the id `id` (already checked to need no escaping: letters,
    /// digits, `-` and `_`), `method` and `path`, when the subscriber of this thread formats with
    /// [`PlainText`], the one format that reads a context; `None` under any other format. The
    /// subscriber is asked once, here, for its format and its writer.
    pub fn for_current_format(id: &str, method: &str, path: &str) -> Option<Self> {
        let writer = tracing::dispatcher::get_default(|dispatch| {
            dispatch.downcast_ref::<PlainText>()?;
            Some(dispatch.downcast_ref::<LogWriter>().cloned())
        })?;
        Some(Self {
            text: Self::text(id, method, path),
            writer,
        })
    }

    /// The fields written as the span's would be: the id quoted, the method and path as they are
    /// (they were `Display` fields).
    fn text(id: &str, method: &str, path: &str) -> String {
        const FIXED: [&str; 4] = ["request{request_id=\"", "\" method=", " path=", "}"];
        let mut text = String::with_capacity(
            FIXED.iter().map(|s| s.len()).sum::<usize>() + id.len() + method.len() + path.len(),
        );
        for (fixed, value) in FIXED.iter().zip([id, method, path, ""]) {
            text.push_str(fixed);
            text.push_str(value);
        }
        text
    }

    /// Makes this the current context of the thread until the guard is dropped (the previous
    /// one, if any, comes back then). Moves the text, allocates nothing.
    pub fn enter(&mut self) -> Entered<'_> {
        let mut text = Some(std::mem::take(&mut self.text));
        // `try_with`: a future dropped while its thread ends (a runtime shutting down) finds
        // the slot gone; its lines then go without the context rather than panic.
        let previous = CURRENT
            .try_with(|current| current.replace(text.take().unwrap_or_default()))
            .ok();
        if let Some(text) = text {
            self.text = text;
        }
        Entered {
            home: self,
            previous,
        }
    }

    /// Writes the access line of this request, answered `status` after `latency_ms`: straight
    /// into the subscriber's [`LogWriter`] when it has one, else as an INFO event of the access
    /// log's target, formatted by the subscriber (with this context current).
    pub fn access_line(&mut self, status: u16, latency_ms: u64) {
        if !tracing::enabled!(target: ACCESS_LOG_TARGET, Level::INFO) {
            return;
        }
        match &self.writer {
            Some(writer) => writer
                .append_access_line(|out| write_access_line(out, &self.text, status, latency_ms)),
            None => {
                let _entered = self.enter();
                tracing::info!(target: ACCESS_LOG_TARGET, status, latency_ms, "request");
            }
        }
    }
}

/// The guard of [`RequestContext::enter`].
pub struct Entered<'a> {
    home: &'a mut RequestContext,
    /// What was current before; `None` if the thread's slot was already gone.
    previous: Option<String>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut previous = self.previous.take();
        if previous.is_none() {
            return;
        }
        if let Ok(text) =
            CURRENT.try_with(|current| current.replace(previous.take().unwrap_or_default()))
        {
            self.home.text = text;
        }
    }
}

/// Writes the thread's current request context, if there is one, followed by `:`; whether it
/// wrote anything.
pub(super) fn write_current(w: &mut impl fmt::Write) -> Result<bool, fmt::Error> {
    let Ok(text) = CURRENT.try_with(Cell::take) else {
        return Ok(false);
    };
    let result = if text.is_empty() {
        Ok(false)
    } else {
        w.write_str(&text)
            .and_then(|()| w.write_char(':'))
            .map(|()| true)
    };
    let _ = CURRENT.try_with(|current| current.set(text));
    result
}

/// The access line as [`PlainText`] formats the event
/// `info!(target: ACCESS_LOG_TARGET, status, latency_ms, "request")` in the span `context`.
fn write_access_line(
    w: &mut impl fmt::Write,
    context: &str,
    status: u16,
    latency_ms: u64,
) -> fmt::Result {
    LineTime::write(w)?;
    w.write_str(padded_level(&Level::INFO))?;
    // Never empty but for a context whose text its thread's end took (`enter`): the line
    // then goes without it, as an event outside any span would.
    if !context.is_empty() {
        w.write_str(context)?;
        w.write_str(": ")?;
    }
    w.write_str(ACCESS_LOG_TARGET)?;
    w.write_str(": request status=")?;
    write_decimal(w, u64::from(status))?;
    w.write_str(" latency_ms=")?;
    write_decimal(w, latency_ms)?;
    w.write_char('\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use super::super::tests::Buffer;

    impl Buffer {
        /// What was written, each line without its time (the first word).
        fn lines_without_time(&self) -> Vec<String> {
            self.text()
                .lines()
                .map(|line| line.split_once(' ').expect("time first").1.to_owned())
                .collect()
        }
    }

    /// The context the edge makes under the current subscriber (the plain-text format).
    fn context(id: &str, method: &str, path: &str) -> RequestContext {
        RequestContext::for_current_format(id, method, path).expect("the plain-text format")
    }

    const ID: &str = "Ab3-_x";
    const PATH: &str = "/a%20b/{x}\"q";

    /// A request's lines the way the edge writes them: a line inside the request with a
    /// nested span, then the access line; as a `tracing` span, or as a context.
    fn request_lines(as_span: bool) {
        let inside = || {
            let inner = tracing::info_span!("store", tree = "codes");
            let _e = inner.enter();
            tracing::warn!(error = "x", "flush failed");
        };
        if as_span {
            let span =
                tracing::info_span!("request", request_id = ID, method = %"GET", path = %PATH);
            let _e = span.enter();
            inside();
            tracing::info!(target: ACCESS_LOG_TARGET, status = 200u16, latency_ms = 3u64, "request");
        } else {
            let mut context = context(ID, "GET", PATH);
            {
                let _e = context.enter();
                inside();
            }
            context.access_line(200, 3);
        }
    }

    fn plain_text(writer: LogWriter) -> impl tracing::Subscriber {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(super::super::PlainFields)
            .event_format(PlainText)
            .with_writer(writer)
            .finish()
    }

    /// The reference: `tracing_subscriber`'s own format of the span and events.
    fn default_format(buffer: Buffer) -> impl tracing::Subscriber {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || buffer.clone())
            .finish()
    }

    #[test]
    fn a_context_and_its_access_line_read_exactly_as_the_span_and_event_would() {
        let reference = Buffer::default();
        tracing::subscriber::with_default(default_format(reference.clone()), || {
            assert!(RequestContext::for_current_format(ID, "GET", PATH).is_none());
            request_lines(true);
        });
        let expected = reference.lines_without_time();
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert!(expected[1].contains("request status=200 latency_ms=3"));

        // Through our writer: the access line is written straight into its buffer.
        let direct = Buffer::default();
        let writer = LogWriter::new(Box::new(direct.clone()), true);
        tracing::subscriber::with_default(plain_text(writer.clone()), || {
            assert!(RequestContext::for_current_format(ID, "GET", PATH).is_some());
            request_lines(false);
        });
        writer.flush();
        assert_eq!(direct.lines_without_time(), expected);

        // Through any other writer: the access line is an event our format writes.
        let evented = Buffer::default();
        let sink = evented.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(super::super::PlainFields)
            .event_format(PlainText)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || request_lines(false));
        assert_eq!(evented.lines_without_time(), expected);
    }

    /// Counts the access-log events that reach the subscriber.
    struct CountAccessEvents(Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountAccessEvents {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if event.metadata().target() == ACCESS_LOG_TARGET {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn with_our_writer_the_access_line_skips_the_event_dispatch_and_with_another_it_does_not() {
        use tracing_subscriber::layer::SubscriberExt;
        let count = |with_log_writer: bool| {
            let events = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let buffer = Buffer::default();
            let fmt = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(super::super::PlainFields)
                .event_format(PlainText);
            let counter = CountAccessEvents(events.clone());
            let registry = tracing_subscriber::registry().with(counter);
            if with_log_writer {
                let writer = LogWriter::new(Box::new(buffer.clone()), false);
                let subscriber = registry.with(fmt.with_writer(writer));
                tracing::subscriber::with_default(subscriber, || {
                    context("a", "GET", "/").access_line(200, 0);
                });
            } else {
                let sink = buffer.clone();
                let subscriber = registry.with(fmt.with_writer(move || sink.clone()));
                tracing::subscriber::with_default(subscriber, || {
                    context("a", "GET", "/").access_line(200, 0);
                });
            }
            assert_eq!(buffer.lines_without_time().len(), 1);
            events.load(std::sync::atomic::Ordering::SeqCst)
        };
        assert_eq!(count(true), 0, "written straight into the log writer");
        assert_eq!(count(false), 1, "an event for any other writer");
    }

    #[test]
    fn the_access_line_is_held_back_like_any_access_line_and_follows_the_filter() {
        let buffer = Buffer::default();
        let writer = LogWriter::new(Box::new(buffer.clone()), true);
        tracing::subscriber::with_default(plain_text(writer.clone()), || {
            context("a", "GET", "/").access_line(200, 0);
            assert!(buffer.lines_without_time().is_empty(), "buffered");
            tracing::warn!("other");
            let lines = buffer.lines_without_time();
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(lines[0].contains("status=200"), "{lines:?}");
        });
        let quiet = Buffer::default();
        let writer = LogWriter::new(Box::new(quiet.clone()), false);
        let warn_only = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .fmt_fields(super::super::PlainFields)
            .event_format(PlainText)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(warn_only, || {
            context("a", "GET", "/").access_line(200, 0);
        });
        assert!(quiet.lines_without_time().is_empty());
    }

    #[test]
    fn contexts_nest_and_leave_nothing_behind() {
        // No subscriber here: contexts made directly.
        let bare = |id, method, path| RequestContext {
            text: RequestContext::text(id, method, path),
            writer: None,
        };
        let mut outer = bare("o", "GET", "/o");
        let mut inner = bare("i", "POST", "/i");
        let current = || {
            let mut s = String::new();
            write_current(&mut s).unwrap();
            s
        };
        assert_eq!(current(), "");
        {
            let _o = outer.enter();
            assert!(current().starts_with("request{request_id=\"o\""));
            {
                let _i = inner.enter();
                assert_eq!(current(), "request{request_id=\"i\" method=POST path=/i}:");
            }
            assert!(current().starts_with("request{request_id=\"o\""));
        }
        assert_eq!(current(), "");
        assert_eq!(inner.text, "request{request_id=\"i\" method=POST path=/i}");
    }
}
