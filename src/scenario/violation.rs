//! What validation finds: one broken rule per [`Violation`], collected by
//! every check module (`validate` and the producer, group, replication and
//! fault checks) so that a file's problems are reported all at once.

/// One broken rule: the field path (`producers[0].rate`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub problem: String,
}

/// The violations found so far, with a shorthand to add one.
pub(super) struct Checks(pub(super) Vec<Violation>);

impl Checks {
    pub(super) fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            problem: problem.into(),
        });
    }
}
