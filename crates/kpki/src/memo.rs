//! A per-thread memory of the last input of a costly pure computation. A bulk run asks the
//! same question (the CA every kubeconfig embeds, the CA every certificate is signed by)
//! thousands of times in a row on each thread: the answer is kept with the exact bytes it was
//! computed from, so different bytes are always computed afresh.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The slot of one computation: the bytes last asked about on this thread, and the answer.
pub(crate) type Last<T> = RefCell<Option<(Vec<u8>, T)>>;

/// `compute()`, or what it returned last time on this thread for the same `key` bytes.
pub(crate) fn last<T: Clone>(
    slot: &'static LocalKey<Last<T>>,
    key: &[u8],
    compute: impl FnOnce() -> T,
) -> T {
    let kept = slot.with(|s| {
        s.borrow()
            .as_ref()
            .filter(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.clone())
    });
    if let Some(v) = kept {
        return v;
    }
    let v = compute();
    slot.with(|s| *s.borrow_mut() = Some((key.to_vec(), v.clone())));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SLOT: Last<usize> = const { RefCell::new(None) };
    }

    #[test]
    fn the_same_bytes_are_answered_from_memory_other_bytes_afresh() {
        let mut calls = 0;
        let mut ask = |k: &[u8]| {
            last(&SLOT, k, || {
                calls += 1;
                k.len()
            })
        };
        assert_eq!(ask(b"abc"), 3);
        assert_eq!(ask(b"abc"), 3);
        assert_eq!(ask(b"abcd"), 4);
        assert_eq!(ask(b"abc"), 3);
        assert_eq!(calls, 3);
    }
}
