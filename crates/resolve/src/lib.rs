//! Resolution: evaluate templated image references from the defaults their configuration
//! declares, the way the tool that deploys them would, and say which definitions made each
//! result. [`ansible`] reads Ansible roles and playbooks (Jinja2, evaluated with `minijinja`);
//! [`helm`] reads Helm charts (the Go-template subset image fields use, evaluated by its own
//! bounded evaluator); both share [`Resolved`], [`EvalError`] and [`Limits`].
//!
//! Evaluation is bounded: a variable that refers to itself is a cycle, nesting stops at
//! [`Limits::depth`], every render has a fuel budget and every value an output cap, so hostile
//! or broken templates end in an [`EvalError`] naming the variable and its file, never a hang.

pub mod ansible;
pub mod helm;
mod jinja;
mod vars;

use std::collections::BTreeSet;

pub use discover::Definition;

/// A templated text evaluated to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The text as written.
    pub template: String,
    /// What it evaluates to.
    pub value: String,
    /// Every defined variable read while evaluating it, in first-read order.
    pub definitions: Vec<Definition>,
    /// Every variable name looked up, defined or not (`local_registry is defined` reads
    /// `local_registry`): the candidates for a knob that moves the result.
    pub looked_up: BTreeSet<String>,
}

/// Why a template could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{name} is undefined")]
    Undefined { name: String },
    #[error("{name} ({at}) refers to itself: {chain}")]
    Cycle {
        name: String,
        at: String,
        chain: String,
    },
    #[error("{name} ({at}) nests more than {limit} variables deep")]
    TooDeep {
        name: String,
        at: String,
        limit: usize,
    },
    #[error("{name} ({at}) evaluates to more than {limit} bytes")]
    TooLarge {
        name: String,
        at: String,
        limit: usize,
    },
    #[error("evaluation needs more than {limit} variable reads")]
    TooManyReads { limit: usize },
    #[error("{at}: {message}")]
    Template { at: String, message: String },
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Variables evaluated inside each other (`a` uses `b` uses `c` is 3).
    pub depth: usize,
    /// Bytes of any one value, and of the result.
    pub output: usize,
    /// Variable reads in one evaluation (cached values included).
    pub reads: usize,
    /// minijinja fuel (instructions) of each render.
    pub fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 32,
            output: 64 << 10,
            reads: 20_000,
            fuel: 200_000,
        }
    }
}
