//! Hierarchical timer wheel. (Stub: being built.)

/// Opaque handle to one timer in a [`Wheel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// A hierarchical timer wheel. (Stub.)
#[derive(Debug)]
pub struct Wheel<T> {
    _entries: Vec<T>,
}
