//! Jinja2 evaluation the way Ansible does it: variables are templates evaluated when read
//! (lazily, recursively), an undefined variable is undefined (so `default()` and `is defined`
//! take their default branch, and printing one is an error), a template that is one `{{ expr }}`
//! yields the value itself (a dict stays a dict), and Ansible's filters for image strings are
//! there (`regex_replace`, `ternary`, `bool`) beside Jinja's own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use crate::vars::Var;
use crate::{Definition, EvalError, Limits, Resolved};

/// One source of variables (a role's defaults, `group_vars/all`, `--set`), each with where it
/// is defined.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    pub vars: HashMap<String, (Var, Definition)>,
}

/// Layers in precedence order: the first that defines a name wins.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scope {
    pub layers: Vec<Arc<Layer>>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<&(Var, Definition)> {
        self.layers.iter().find_map(|l| l.vars.get(name))
    }
}

/// The template engine, configured once.
pub(crate) struct Evaluator {
    env: Environment<'static>,
    limits: Limits,
}

impl fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evaluator")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Evaluator {
    pub fn new(limits: Limits) -> Arc<Evaluator> {
        let mut env = Environment::new();
        // Ansible's StrictUndefined, except that `{% if x %}` on an undefined `x` is false.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_fuel(Some(limits.fuel));
        env.set_recursion_limit(limits.depth.max(8));
        env.add_filter("regex_replace", regex_replace);
        env.add_filter("ternary", ternary);
        env.add_filter("bool", ansible_bool);
        Arc::new(Evaluator { env, limits })
    }

    /// Evaluate `template` (written at `at`) against `scope`.
    pub fn resolve(
        self: &Arc<Self>,
        scope: &Arc<Scope>,
        template: &str,
        at: &str,
    ) -> Result<Resolved, EvalError> {
        let run = Arc::new(Run {
            ev: self.clone(),
            scope: scope.clone(),
            state: Mutex::new(RunState::default()),
        });
        // Printed with the state unlocked: printing a mapping evaluates its leaves now.
        let text = run.template(template, at).map(|v| printed(&v));
        // Cached mappings hold the run (`LazyMap::run`): clearing the cache breaks that cycle,
        // or every evaluation would leak its values.
        let cache = std::mem::take(&mut run.lock().cache);
        drop(cache);
        let mut st = run.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        let text = text?;
        if text.len() > self.limits.output {
            return Err(EvalError::TooLarge {
                name: "the result".to_string(),
                at: at.to_string(),
                limit: self.limits.output,
            });
        }
        Ok(Resolved {
            template: template.to_string(),
            value: text,
            definitions: std::mem::take(&mut st.definitions),
            looked_up: std::mem::take(&mut st.looked_up),
        })
    }
}

/// How a value prints in a template (`None` prints as Python does).
fn printed(v: &Value) -> String {
    if v.is_none() {
        "None".to_string()
    } else {
        v.to_string()
    }
}

/// One evaluation: its scope, what it has read, and the first error met inside a variable
/// (which the engine, asking for a value, cannot return directly).
#[derive(Debug)]
struct Run {
    ev: Arc<Evaluator>,
    scope: Arc<Scope>,
    state: Mutex<RunState>,
}

#[derive(Debug, Default)]
struct RunState {
    /// Variables being evaluated, outermost first, for cycles and depth.
    stack: Vec<String>,
    cache: HashMap<String, Value>,
    definitions: Vec<Definition>,
    recorded: HashSet<String>,
    looked_up: BTreeSet<String>,
    last_undefined: Option<String>,
    error: Option<EvalError>,
    reads: usize,
}

impl Run {
    fn lock(&self) -> MutexGuard<'_, RunState> {
        // A panic inside a filter cannot leave the state half-updated in a way that matters:
        // the evaluation is abandoned either way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: EvalError) {
        let mut st = self.lock();
        if st.error.is_none() {
            st.error = Some(e);
        }
    }

    /// A top-level variable, by name.
    fn lookup(self: &Arc<Self>, name: &str) -> Option<Value> {
        {
            let mut st = self.lock();
            st.looked_up.insert(name.to_string());
            if let Some(v) = st.cache.get(name) {
                return Some(v.clone());
            }
        }
        let Some((var, def)) = self.scope.get(name) else {
            self.lock().last_undefined = Some(name.to_string());
            return None;
        };
        {
            let mut st = self.lock();
            if st.recorded.insert(name.to_string()) {
                st.definitions.push(def.clone());
            }
        }
        let at = format!("{}:{}:{}", def.file, def.line, def.column);
        let value = self.value(name, var, &at);
        if !value.is_undefined() {
            self.lock().cache.insert(name.to_string(), value.clone());
        }
        Some(value)
    }

    /// A variable's value; strings are evaluated now, inside `name`'s frame.
    fn value(self: &Arc<Self>, name: &str, var: &Var, at: &str) -> Value {
        match var {
            Var::Str(text) => self.string(name, text, at),
            Var::Int(i) => Value::from(*i),
            Var::Float(f) => Value::from(*f),
            Var::Bool(b) => Value::from(*b),
            Var::None => Value::from(()),
            Var::Map(items) => Value::from_object(LazyMap {
                run: self.clone(),
                path: name.to_string(),
                at: at.to_string(),
                items: items.clone(),
            }),
            Var::Seq(items) => Value::from(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.value(&format!("{name}[{i}]"), v, at))
                    .collect::<Vec<_>>(),
            ),
        }
    }

    fn string(self: &Arc<Self>, name: &str, text: &str, at: &str) -> Value {
        if !text.contains("{{") && !text.contains("{%") {
            return Value::from(text);
        }
        {
            let mut st = self.lock();
            if st.error.is_some() {
                return Value::UNDEFINED;
            }
            st.reads += 1;
            let limits = self.ev.limits;
            let error = if st.reads > limits.reads {
                Some(EvalError::TooManyReads {
                    limit: limits.reads,
                })
            } else if st.stack.iter().any(|s| s == name) {
                let mut chain: Vec<&str> = st.stack.iter().map(String::as_str).collect();
                chain.push(name);
                Some(EvalError::Cycle {
                    name: name.to_string(),
                    at: at.to_string(),
                    chain: chain.join(" -> "),
                })
            } else if st.stack.len() >= limits.depth {
                Some(EvalError::TooDeep {
                    name: name.to_string(),
                    at: at.to_string(),
                    limit: limits.depth,
                })
            } else {
                None
            };
            if let Some(e) = error {
                if st.error.is_none() {
                    st.error = Some(e);
                }
                return Value::UNDEFINED;
            }
            st.stack.push(name.to_string());
        }
        let result = self.template(text, at);
        self.lock().stack.pop();
        match result {
            Ok(v) if v.as_str().is_some_and(|s| s.len() > self.ev.limits.output) => {
                self.fail(EvalError::TooLarge {
                    name: name.to_string(),
                    at: at.to_string(),
                    limit: self.ev.limits.output,
                });
                Value::UNDEFINED
            }
            Ok(v) => v,
            Err(e) => {
                self.fail(e);
                Value::UNDEFINED
            }
        }
    }

    /// Evaluate one template text: a lone `{{ expr }}` to its value, anything else to a string.
    fn template(self: &Arc<Self>, text: &str, at: &str) -> Result<Value, EvalError> {
        let root = Value::from_object(Root(self.clone()));
        let env = &self.ev.env;
        let result = match single_expression(text) {
            Some(expr) => env.compile_expression(expr).and_then(|e| e.eval(root)),
            None => env.render_str(text, root).map(Value::from),
        };
        // An expression that is undefined as a whole is an error, as printing it would be.
        if result.as_ref().is_ok_and(Value::is_undefined) && self.lock().error.is_none() {
            let name = self.lock().last_undefined.clone();
            return Err(EvalError::Undefined {
                name: name.unwrap_or_else(|| text.trim().to_string()),
            });
        }
        result.map_err(|e| {
            if let Some(inner) = self.lock().error.clone() {
                return inner;
            }
            if e.kind() == ErrorKind::UndefinedError
                && let Some(name) = self.lock().last_undefined.clone()
            {
                return EvalError::Undefined { name };
            }
            EvalError::Template {
                at: at.to_string(),
                message: e.to_string(),
            }
        })
    }
}

/// The expression of a template that is exactly one `{{ … }}`, as Ansible returns its value
/// (not its text) in that case.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let clean = !inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%");
    clean.then_some(inner)
}

/// The variables of a run, as the template's root context.
#[derive(Debug)]
struct Root(Arc<Run>);

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.lookup(key.as_str()?)
    }
}

/// A mapping variable whose string leaves are evaluated when read (`images.ks_apiserver.repo`).
#[derive(Debug)]
struct LazyMap {
    run: Arc<Run>,
    path: String,
    at: String,
    items: Arc<[(String, Var)]>,
}

impl Object for LazyMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        // The last of duplicate keys, as YAML loaders do.
        let (_, var) = self.items.iter().rev().find(|(k, _)| k == key)?;
        Some(
            self.run
                .value(&format!("{}.{key}", self.path), var, &self.at),
        )
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = Vec::new();
        for (k, _) in self.items.iter() {
            let k = Value::from(k.as_str());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Enumerator::Values(keys)
    }
}

/// Ansible's `regex_replace(pattern, replacement)`: Python's `\1` and `\g<name>` references.
fn regex_replace(
    value: String,
    pattern: String,
    replacement: Option<String>,
) -> Result<String, minijinja::Error> {
    let re = regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let replacement = replacement.unwrap_or_default().replace('$', "$$");
    let python_ref = regex::Regex::new(r"\\(\d+)|\\g<(\w+)>").expect("a valid pattern");
    let replacement = python_ref.replace_all(&replacement, |c: &regex::Captures| {
        format!("${{{}}}", c.get(1).or(c.get(2)).map_or("", |m| m.as_str()))
    });
    Ok(re.replace_all(&value, replacement.as_ref()).into_owned())
}

/// Ansible's `ternary(true_value, false_value, none_value)`.
fn ternary(value: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match none {
        Some(n) if value.is_none() => n,
        _ if value.is_true() => yes,
        _ => no,
    }
}

/// Ansible's `bool`: `yes`, `on`, `true`, `1` (any case) are true, as are true and 1.
fn ansible_bool(value: Value) -> bool {
    if let Some(s) = value.as_str() {
        return matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true" | "y" | "t"
        );
    }
    if let Ok(i) = i64::try_from(value.clone()) {
        return i == 1;
    }
    value.is_true() && value.kind() == minijinja::value::ValueKind::Bool
}
