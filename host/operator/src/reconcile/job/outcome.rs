//! What one part of a job's decision adds to it, in one type for every part.

use crate::reconcile::{Effect, Note};

/// What a part of a job's decision (securing its state, its manual and periodic snapshots,
/// the tenant's upgrade verdict) adds to the decision besides its own result, `value`. Every
/// part returns this one type and [`super::Draft::absorb`] folds it in, so the two resource
/// kinds cannot fold the same part in differently.
#[derive(Debug, PartialEq)]
pub struct Outcome<T = ()> {
    /// The part's own result (the secured restore path, the mode to upgrade in, ...).
    pub value: T,
    pub actions: Vec<Effect>,
    pub notes: Vec<Note>,
    /// The status, as it stands once this is folded in, is written before the actions.
    pub write_ahead: bool,
    /// `(kind, message)` for the status error.
    pub error: Option<(&'static str, String)>,
    pub pace: Pace,
    /// Why the job waits (for the Running condition) and until when (ms; to look again then).
    pub waiting: Option<(String, i64)>,
}

impl<T: Default> Default for Outcome<T> {
    fn default() -> Self {
        Self::of(T::default())
    }
}

impl<T> Outcome<T> {
    /// Nothing to add but `value`.
    pub fn of(value: T) -> Self {
        Self {
            value,
            actions: Vec::new(),
            notes: Vec::new(),
            write_ahead: false,
            error: None,
            pace: Pace::AsIs,
            waiting: None,
        }
    }

    /// Folds `other`'s additions into this one (this one's value is kept).
    pub fn merge<U>(&mut self, other: Outcome<U>) {
        self.actions.extend(other.actions);
        self.notes.extend(other.notes);
        self.write_ahead |= other.write_ahead;
        self.error = self.error.take().or(other.error);
        self.pace = self.pace.then(other.pace);
        self.waiting = self.waiting.take().or(other.waiting);
    }
}

/// When the resource should be looked at again, as far as one part is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pace {
    /// As the rest of the decision says.
    #[default]
    AsIs,
    /// Soon (the progress-check interval): something is moving.
    Soon,
    /// At the normal interval even if something else is moving: what is missing will not
    /// appear in a few seconds (no checkpoint yet, a request Flink refused).
    Normal,
}

impl Pace {
    /// Two parts' paces as one: `Normal` wins over `Soon`, which wins over `AsIs`.
    pub fn then(self, other: Pace) -> Pace {
        match (self, other) {
            (Pace::Normal, _) | (_, Pace::Normal) => Pace::Normal,
            (Pace::Soon, _) | (_, Pace::Soon) => Pace::Soon,
            _ => Pace::AsIs,
        }
    }

    /// `progressing` (look again soon) after this pace.
    pub fn apply(self, progressing: bool) -> bool {
        match self {
            Pace::AsIs => progressing,
            Pace::Soon => true,
            Pace::Normal => false,
        }
    }
}
