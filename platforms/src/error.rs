//! Errors that name the file, the field and the problem.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a description file (a board file or a system description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescError {
    /// The file that holds the problem.
    pub file: PathBuf,
    /// `line:column` when the problem is a syntax error.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the offending field, e.g. `memory.size`; empty for whole-file errors.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub problem: String,
}

impl DescError {
    /// An error about `field` in `file`.
    pub fn new(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position: None,
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Turn a TOML parse error into a `DescError` with its line and column.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> Self {
        let position = err.span().map(|span| line_col(text, span.start));
        let problem = err.message().trim().to_string();
        let field = match (problem.strip_prefix("missing field `"), position) {
            (Some(rest), _) => rest.split('`').next().unwrap_or_default().to_string(),
            (None, Some((line, _))) => field_at_line(text, line),
            (None, None) => String::new(),
        };
        Self {
            file: file.to_path_buf(),
            position,
            field,
            problem,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, col)
}

/// The dotted key defined on 1-based `line`: the enclosing `[table]` plus the key
/// before `=`, or the table itself for a header line.
fn field_at_line(text: &str, line: usize) -> String {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate().take(line) {
        let l = l.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if i + 1 == line
            && let Some((key, _)) = l.split_once('=')
        {
            let key = key.trim();
            return if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
        }
    }
    table
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.problem)
        } else {
            write!(f, ": field `{}`: {}", self.field, self.problem)
        }
    }
}

impl std::error::Error for DescError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn field_at_line_uses_enclosing_table() {
        let text = "[system]\nname = 42\n[[module]]\nfile = 1\n";
        assert_eq!(field_at_line(text, 2), "system.name");
        assert_eq!(field_at_line(text, 4), "module.file");
        assert_eq!(field_at_line(text, 3), "module");
    }

    #[test]
    fn display_names_file_field_problem() {
        let e = DescError::new(Path::new("x.toml"), "memory.size", "must not be zero");
        assert_eq!(e.to_string(), "x.toml: field `memory.size`: must not be zero");
    }
}
