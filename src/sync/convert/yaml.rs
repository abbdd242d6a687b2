//! The converted config as a tree that writes itself as YAML: every string
//! double-quoted (JSON's escapes are YAML's), comments on their own lines
//! above what they explain.

/// A value.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Str(String),
    /// A number or a boolean, written as is.
    Plain(String),
    List(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key, its value, and what a reader should know about it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub value: Node,
    pub comments: Vec<String>,
}

impl Entry {
    pub fn new(key: &str, value: Node) -> Entry {
        Entry {
            key: key.to_string(),
            value,
            comments: Vec::new(),
        }
    }

    pub fn noted(mut self, comment: impl Into<String>) -> Entry {
        self.comments.push(comment.into());
        self
    }
}

pub(super) fn s(text: &str) -> Node {
    Node::Str(text.to_string())
}

pub(super) fn strs<I: IntoIterator<Item = String>>(items: I) -> Node {
    Node::List(items.into_iter().map(Node::Str).collect())
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if plain { k.to_string() } else { quote(k) }
}

/// `entries` at `indent` spaces.
pub(super) fn write(entries: &[Entry], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for e in entries {
        for c in &e.comments {
            for line in c.lines() {
                out.push_str(&format!("{pad}# {line}\n"));
            }
        }
        match &e.value {
            Node::Str(v) => out.push_str(&format!("{pad}{}: {}\n", key(&e.key), quote(v))),
            Node::Plain(v) => out.push_str(&format!("{pad}{}: {v}\n", key(&e.key))),
            Node::List(items) if items.iter().all(|i| !matches!(i, Node::Map(_))) => {
                let inline: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Node::Str(v) => quote(v),
                        Node::Plain(v) => v.clone(),
                        _ => String::new(),
                    })
                    .collect();
                out.push_str(&format!("{pad}{}: [{}]\n", key(&e.key), inline.join(", ")));
            }
            Node::List(items) => {
                out.push_str(&format!("{pad}{}:\n", key(&e.key)));
                for i in items {
                    if let Node::Map(fields) = i {
                        let mut item = String::new();
                        write(fields, indent + 4, &mut item);
                        // The first field goes on the dash's line.
                        let first = item
                            .lines()
                            .position(|l| !l.trim_start().starts_with('#'))
                            .unwrap_or(0);
                        for (n, line) in item.lines().enumerate() {
                            if n == first {
                                out.push_str(&format!("{pad}  - {}\n", line.trim_start()));
                            } else {
                                out.push_str(&format!("{line}\n"));
                            }
                        }
                    }
                }
            }
            Node::Map(fields) if fields.is_empty() => {
                out.push_str(&format!("{pad}{}: {{}}\n", key(&e.key)))
            }
            Node::Map(fields) => {
                out.push_str(&format!("{pad}{}:\n", key(&e.key)));
                write(fields, indent + 2, out);
            }
        }
    }
}
