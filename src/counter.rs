//! Live counters and their snapshots: a struct of `AtomicU64` fields that
//! concurrent tasks add to, and a plain struct with `u64` fields of the
//! same names that a report holds. Copy statistics, signing requests and
//! per-host request counts are all kept this way.

use std::sync::atomic::{AtomicU64, Ordering};

/// Add `n` to `counter`. Counters only count: no ordering with other
/// memory is needed.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The value of `counter` now.
#[must_use]
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// `snapshot!(live => Plain { a, b; c: value, d })` builds `Plain` with `a`
/// and `b` read from the same-named counters of `live`, and the other
/// fields after the `;` as a struct literal gives them.
macro_rules! snapshot {
    ($live:expr => $plain:ident { $($field:ident),+ $(,)? $(; $($other:ident $(: $value:expr)?),+ $(,)?)? }) => {{
        let live = $live;
        $plain {
            $($field: $crate::counter::get(&live.$field),)+
            $($($other $(: $value)?,)+)?
        }
    }};
}
pub(crate) use snapshot;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Live {
        a: AtomicU64,
        b: AtomicU64,
    }

    #[derive(Debug, PartialEq)]
    struct Plain {
        a: u64,
        b: u64,
        c: &'static str,
    }

    #[test]
    fn a_snapshot_reads_each_counter_by_name() {
        let live = Live::default();
        add(&live.a, 2);
        add(&live.b, 5);
        add(&live.a, 1);
        assert_eq!(
            snapshot!(&live => Plain { a, b; c: "x" }),
            Plain { a: 3, b: 5, c: "x" }
        );
    }
}
