//! Where each key and list item of the file being converted starts, by its
//! path (`sync[2].tags.allow`), so that whatever the converter leaves out
//! names its line; and each scalar as written, since YAML reads an unquoted
//! `1.10` as the number 1.1 while regsync and skopeo, reading into strings,
//! keep "1.10". Read from the YAML parser's events (the parser serde-saphyr
//! reads the values with), never from the text by indentation.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

/// Path → 1-based line, and path → a scalar value's text.
#[derive(Debug, Default)]
pub(super) struct Lines {
    lines: HashMap<String, usize>,
    texts: HashMap<String, String>,
}

/// An open mapping (with the key whose value comes next) or sequence.
enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

impl Lines {
    /// The lines of `text`; as far as it parses (the values were parsed
    /// before, so an error here only ends the index early).
    pub fn of(text: &str) -> Lines {
        let mut lines = HashMap::new();
        let mut texts = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let line = span.start.line();
            match event {
                Event::Scalar(key, ..)
                    if matches!(stack.last(), Some(Frame::Map { key: None, .. })) =>
                {
                    if let Some(Frame::Map { path, key: pending }) = stack.last_mut() {
                        let at = join(path, &key);
                        lines.entry(at.clone()).or_insert(line);
                        *pending = Some(at);
                    }
                }
                Event::Scalar(text, ..) => {
                    let at = next_value(&mut stack, &mut lines, line);
                    texts.insert(at, text.into_owned());
                }
                Event::Alias(_) => {
                    next_value(&mut stack, &mut lines, line);
                }
                Event::MappingStart(..) => {
                    let path = next_value(&mut stack, &mut lines, line);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = next_value(&mut stack, &mut lines, line);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Lines { lines, texts }
    }

    /// The scalar at `path` as the file writes it.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.texts.get(path).map(String::as_str)
    }

    /// The line of `path`, or of the nearest enclosing key or item.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut at = path;
        loop {
            if let Some(n) = self.lines.get(at) {
                return Some(*n);
            }
            at = &at[..at.rfind(['.', '['])?];
        }
    }
}

/// The path of the value that starts now, its line kept if it is a list
/// item (a key's line was kept with the key).
fn next_value(stack: &mut [Frame], lines: &mut HashMap<String, usize>, line: usize) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { key, .. }) => key.take().unwrap_or_default(),
        Some(Frame::Seq { path, next }) => {
            let at = format!("{path}[{next}]");
            *next += 1;
            lines.entry(at.clone()).or_insert(line);
            at
        }
    }
}

fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn keys_and_items_by_path() {
        let text = "version: 1\nsync:\n  - source: a\n    target: b\n  - source: c\n    tags:\n      allow: [x, y]\n      tagz: 1\n    x: {k: v}\n";
        let l = Lines::of(text);
        assert_eq!(l.line("version"), Some(1));
        assert_eq!(l.line("sync"), Some(2));
        assert_eq!(l.line("sync[0]"), Some(3));
        assert_eq!(l.line("sync[0].target"), Some(4));
        assert_eq!(l.line("sync[1]"), Some(5));
        assert_eq!(l.line("sync[1].tags.allow"), Some(7));
        assert_eq!(l.line("sync[1].tags.tagz"), Some(8));
        assert_eq!(l.line("sync[1].x.k"), Some(9));
        // Not there: the nearest enclosing one.
        assert_eq!(l.line("sync[1].tags.deny"), Some(6));
        assert_eq!(l.line("nothing"), None);
        assert_eq!(l.text("sync[1].tags.allow[1]"), Some("y"));
        assert_eq!(l.text("version"), Some("1"));
    }
}
