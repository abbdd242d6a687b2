//! `ocirepl config convert`: a regsync config or a `skopeo sync` YAML
//! turned into the ocirepl config that mirrors the same images, as text a
//! user reads before using it, with a comment wherever the meaning shifts.
//!
//! Owns both readings and the one writer. Whatever has no equivalent is
//! listed ([`Converted::unsupported`]) and nothing is dropped silently;
//! what ocirepl does differently is said in the output's comments
//! ([`Converted::notes`]). Pure: text in, text out.

mod lines;
mod regsync;
mod skopeo;
mod yaml;

pub use skopeo::Destination;

/// A converted config.
#[derive(Debug, Default)]
pub struct Converted {
    /// The ocirepl config, YAML, comments included.
    pub text: String,
    /// What ocirepl does differently (also in the text, as comments).
    pub notes: Vec<String>,
    /// What has no equivalent: left out, each named with its line.
    pub unsupported: Vec<String>,
    lines: lines::Lines,
    /// regsync passes over any key that starts with `x-` (a user's
    /// extension, at any level); skopeo has no such keys.
    extensions: bool,
    /// Values found of the wrong kind so far: a filter with one cannot be
    /// read, and what it would select is not converted at all.
    misshapen: usize,
}

impl Converted {
    fn of(text: &str, from: From) -> Converted {
        Converted {
            lines: lines::Lines::of(text),
            extensions: from == From::Regsync,
            ..Converted::default()
        }
    }

    /// Something at `path` in the file (`sync[2].tags`) with no
    /// equivalent: listed with its line.
    fn leave_out(&mut self, path: &str, what: String) {
        match self.lines.line(path) {
            Some(n) => self.unsupported.push(format!("line {n}: {what}")),
            None => self.unsupported.push(what),
        }
    }

    /// The items of the list `v` at `path` as text: strings as they are,
    /// numbers and booleans as the file writes them (an unquoted `1.10` is
    /// "1.10", as regsync and skopeo read it); anything else is listed as
    /// left out.
    fn strings(&mut self, v: &serde_json::Value, path: &str, label: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !v.is_null() && !v.is_array() {
            self.misshapen(path, format!("{label}: not a list"));
        }
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            let at = format!("{path}[{i}]");
            match self.scalar(item, &at) {
                Some(t) => out.push(t),
                None => self.misshapen(&at, format!("{label}[{i}]: not a string")),
            }
        }
        out
    }

    /// A value of the wrong kind at `path`: listed, and counted.
    fn misshapen(&mut self, path: &str, what: String) {
        self.misshapen += 1;
        self.leave_out(path, what);
    }

    /// A string as it is; a number or boolean as the file writes it.
    fn scalar(&self, v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                self.lines.text(path).map(str::to_string)
            }
            _ => None,
        }
    }

    /// The `keys` of the mapping `v` at `path` that are there but not of
    /// their kind, each listed with its line (the converter reads only
    /// what has its kind, so anything else would vanish).
    fn typed(&mut self, v: &serde_json::Value, path: &str, label: &str, keys: &[(&str, Kind)]) {
        for (key, kind) in keys {
            let value = &v[*key];
            if !value.is_null() && !kind.fits(value) {
                let at = match path {
                    "" => key.to_string(),
                    p => format!("{p}.{key}"),
                };
                self.misshapen(&at, format!("{label}{key}: not {}", kind.name()));
            }
        }
    }

    /// The keys of the mapping `v` at `path` that are not in `known` (nor
    /// a regsync `x-` extension), each listed with its line.
    fn unknown_keys(&mut self, v: &serde_json::Value, path: &str, label: &str, known: &[&str]) {
        for key in v.as_object().into_iter().flat_map(|m| m.keys()) {
            let extension = self.extensions && key.starts_with("x-");
            if !known.contains(&key.as_str()) && !extension {
                let at = match path {
                    "" => key.clone(),
                    p => format!("{p}.{key}"),
                };
                self.leave_out(&at, format!("{label}{key}: unknown key"));
            }
        }
    }
}

/// What a key of the other tool's file holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    /// Text, or a number or boolean taken as the file writes it.
    Scalar,
    Number,
    Bool,
    List,
    Map,
}

impl Kind {
    fn fits(self, v: &serde_json::Value) -> bool {
        match self {
            Kind::Text => v.is_string(),
            Kind::Scalar => v.is_string() || v.is_number() || v.is_boolean(),
            Kind::Number => v.is_number(),
            Kind::Bool => v.is_boolean(),
            Kind::List => v.is_array(),
            Kind::Map => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Scalar => "a string or a number",
            Kind::Number => "a number",
            Kind::Bool => "true or false",
            Kind::List => "a list",
            Kind::Map => "a mapping",
        }
    }
}

/// Which tool wrote the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Regsync,
    Skopeo,
}

/// A file that cannot be read as the tool's config at all.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
pub struct ConvertError {
    pub file: String,
    pub why: String,
}

/// Converts `text` (the file `file`) written for `from`.
pub fn convert(
    from: From,
    file: &str,
    text: &str,
    destination: Option<&Destination>,
) -> Result<Converted, ConvertError> {
    let bad = |why: String| ConvertError {
        file: file.to_string(),
        why,
    };
    if let Some((line, _)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start_matches(' ').starts_with('\t'))
    {
        return Err(bad(format!(
            "line {}: a tab indents it; YAML indents with spaces",
            line + 1
        )));
    }
    let doc: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?;
    match from {
        From::Regsync => regsync::convert(&doc, Converted::of(text, from)).map_err(bad),
        From::Skopeo => {
            let dest = destination.ok_or_else(|| {
                bad("a skopeo sync config needs --target HOST/PREFIX (skopeo sync's destination argument)".into())
            })?;
            skopeo::convert(&doc, dest, Converted::of(text, from)).map_err(bad)
        }
    }
}

/// What a config that is not ocirepl's looks like it is, for the error
/// `ocirepl sync` gives it.
pub fn recognise(text: &str) -> Option<From> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    let map = doc.as_object()?;
    if map.contains_key("sync") && !map.contains_key("jobs") {
        return Some(From::Regsync);
    }
    let skopeo_keys = ["images", "images-by-tag-regex", "images-by-semver"];
    let looks_skopeo = !map.is_empty()
        && map.values().all(|v| {
            v.as_object()
                .is_some_and(|r| r.keys().any(|k| skopeo_keys.contains(&k.as_str())))
        });
    looks_skopeo.then_some(From::Skopeo)
}

/// A job name from a repository path: letters, digits, `-` and `_`.
fn job_name(path: &str, taken: &mut Vec<String>) -> String {
    let mut name: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if name.is_empty() {
        name = "job".into();
    }
    let mut unique = name.clone();
    let mut n = 2;
    while taken.contains(&unique) {
        unique = format!("{name}-{n}");
        n += 1;
    }
    taken.push(unique.clone());
    unique
}

#[cfg(test)]
mod tests;
