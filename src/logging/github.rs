//! The GitHub Actions side of logging: workflow commands written to stderr,
//! which the runner reads as it reads stdout.
//!
//! - [`Groups`]: `::group::<name>` when a phase span is first entered,
//!   `::endgroup::` when it closes, so each phase folds in the job log.
//!   GitHub does not nest groups: a phase inside an open one adds none.
//! - [`DebugLines`]: each event as `::debug::<message> key=value...`,
//!   escaped as workflow-command data.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The span name the phases of a command use.
pub const PHASE_SPAN: &str = "phase";

/// Where the lines go: stderr, or a buffer in tests.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

fn stderr_sink() -> Sink {
    Arc::new(|line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    })
}

/// True for the spans [`Groups`] folds.
#[must_use]
pub fn is_phase(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.name() == PHASE_SPAN
}

/// Escapes workflow-command data (`%`, CR, LF), as the runner unescapes it.
#[must_use]
pub fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The `name` field of a phase span, kept in its extensions.
struct PhaseName(String);
/// Set on a span that opened the current group.
struct OpenedGroup;

/// `::group::` per phase span.
pub struct Groups {
    sink: Sink,
    open: AtomicBool,
}

impl Groups {
    #[must_use]
    pub fn stderr() -> Self {
        Groups::to(stderr_sink())
    }

    fn to(sink: Sink) -> Self {
        Groups {
            sink,
            open: AtomicBool::new(false),
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Groups {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_phase(attrs.metadata()) {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        // `phase = ...` (preferred: `--log-format json` writes a span's
        // name under the key `name`, so a field `name` duplicates that key)
        // or `name = ...`.
        let name = fields
            .named("phase")
            .or_else(|| fields.named("name"))
            .unwrap_or_else(|| PHASE_SPAN.to_string());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(PhaseName(name));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(PhaseName(name)) = extensions.get_mut::<PhaseName>() else {
            return;
        };
        // Entered again (an async phase is entered on every poll), or
        // inside another phase's group: nothing to open.
        let name = std::mem::take(name);
        if name.is_empty() || self.open.swap(true, Ordering::SeqCst) {
            return;
        }
        extensions.insert(OpenedGroup);
        (self.sink)(&format!("::group::{}", escape(&name)));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.extensions().get::<OpenedGroup>().is_some() {
            self.open.store(false, Ordering::SeqCst);
            (self.sink)("::endgroup::");
        }
    }
}

/// `::debug::` per event.
pub struct DebugLines {
    sink: Sink,
}

impl DebugLines {
    #[must_use]
    pub fn stderr() -> Self {
        DebugLines {
            sink: stderr_sink(),
        }
    }
}

impl<S: Subscriber> Layer<S> for DebugLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = format!("{}: {}", event.metadata().target(), fields.message);
        for (key, value) in &fields.others {
            let _ = write!(line, " {key}={value}");
        }
        (self.sink)(&format!("::debug::{}", escape(&line)));
    }
}

/// An event's or span's fields: `message` apart, the others in order.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Fields {
    fn named(&self, name: &str) -> Option<String> {
        self.others
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.others.push((field.name(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn capture() -> (Sink, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink_lines = lines.clone();
        let sink: Sink = Arc::new(move |line: &str| {
            sink_lines.lock().unwrap().push(line.to_string());
        });
        (sink, lines)
    }

    #[test]
    fn a_group_per_phase_never_nested_and_debug_lines_escaped() {
        let (sink, lines) = capture();
        let subscriber = tracing_subscriber::registry()
            .with(Groups::to(sink.clone()))
            .with(DebugLines { sink }.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
        tracing::subscriber::with_default(subscriber, || {
            let plan = tracing::info_span!("phase", name = %"plan");
            plan.in_scope(|| {
                tracing::debug!(host = "gcr.io", "retrying\nafter 429");
                // Entered twice, nested: still one group.
                plan.in_scope(|| {});
                tracing::info_span!("phase", name = "inner").in_scope(|| {});
            });
            drop(plan);
            tracing::info_span!("other").in_scope(|| {});
            tracing::info_span!("phase", phase = "copy 100%").in_scope(|| {});
        });
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "::group::plan",
                "::debug::promoter::logging::github::tests: retrying%0Aafter 429 host=gcr.io",
                "::endgroup::",
                "::group::copy 100%25",
                "::endgroup::",
            ]
        );
    }
}
