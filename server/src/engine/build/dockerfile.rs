//! Reading a Dockerfile: instructions (comments and line continuations
//! handled), the JSON (exec) form of arguments, and the word processing
//! Docker applies to most instructions' arguments: quotes, backslash
//! escapes and `$VAR` / `${VAR}` / `${VAR:-default}` / `${VAR:+alt}`.

/// One instruction as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Upper case: `RUN`.
    pub keyword: String,
    /// The rest of the (joined) line, trimmed.
    pub args: String,
    /// The line it starts on (1-based).
    pub line: usize,
}

impl Instruction {
    /// As `Step n/m :` shows it.
    pub fn display(&self) -> String {
        format!("{} {}", self.keyword, self.args)
    }
}

/// Instructions we run; others are refused with their name before any step.
pub const SUPPORTED: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "CMD",
    "ENTRYPOINT",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "STOPSIGNAL",
    "MAINTAINER",
];

/// Instructions Docker knows that this builder does not do.
const KNOWN_UNSUPPORTED: &[&str] = &["ONBUILD", "HEALTHCHECK", "SHELL"];

pub fn parse(text: &str) -> Result<Vec<Instruction>, String> {
    let mut instructions = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        // Comments (and parser directives) go, also inside a continuation.
        if line.starts_with('#') || (line.is_empty() && pending.is_none()) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((n + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(part) => {
                joined.push_str(part);
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                instructions.push(instruction(start, &joined)?);
            }
        }
    }
    if let Some((start, joined)) = pending {
        instructions.push(instruction(start, &joined)?);
    }
    Ok(instructions)
}

fn instruction(line: usize, text: &str) -> Result<Instruction, String> {
    let text = text.trim();
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = keyword.to_ascii_uppercase();
    if KNOWN_UNSUPPORTED.contains(&keyword.as_str()) {
        return Err(format!(
            "Dockerfile line {line}: {keyword} is not supported by this playground's docker build"
        ));
    }
    if !SUPPORTED.contains(&keyword.as_str()) {
        return Err(format!(
            "Dockerfile parse error line {line}: unknown instruction: {keyword}"
        ));
    }
    Ok(Instruction {
        keyword,
        args: args.trim().to_string(),
        line,
    })
}

/// `["a", "b"]` (the exec form), or `None` for the shell form.
pub fn json_form(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// Split `text` into words as Docker does (whitespace outside quotes ends a
/// word; quotes are removed) and expand variables with `lookup`.
pub fn words(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    Lexer { lookup }.run(text, true)
}

/// Like [`words`], but all of `text` is one word (WORKDIR, USER, ...).
pub fn word(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    Ok(Lexer { lookup }.run(text, false)?.concat())
}

struct Lexer<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Lexer<'_> {
    fn run(&self, text: &str, split: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut in_word = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                c if split && c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut current));
                        in_word = false;
                    }
                    continue;
                }
                '\\' => match chars.next() {
                    Some(next) => current.push(next),
                    None => current.push('\\'),
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(format!("unexpected end of text in {text:?}")),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n @ ('"' | '\\' | '$')) => {
                                current.push(n);
                                chars.next();
                            }
                            _ => current.push('\\'),
                        },
                        Some('$') => current.push_str(&self.variable(&mut chars)?),
                        Some(c) => current.push(c),
                        None => return Err(format!("unexpected end of text in {text:?}")),
                    }
                },
                '$' => current.push_str(&self.variable(&mut chars)?),
                c => current.push(c),
            }
            in_word = true;
        }
        if in_word {
            words.push(current);
        }
        Ok(words)
    }

    /// After a `$`: the variable's value (or `$` itself when no name follows).
    fn variable(&self, chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<String, String> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if !is_name(c) {
                    break;
                }
                name.push(c);
                chars.next();
            }
            let value = (self.lookup)(&name);
            match chars.next() {
                Some('}') => Ok(value.unwrap_or_default()),
                Some(':') => {
                    let modifier = chars.next();
                    let mut word = String::new();
                    let mut depth = 0;
                    loop {
                        match chars.next() {
                            Some('}') if depth == 0 => break,
                            Some(c) => {
                                depth += (c == '{') as i32 - (c == '}') as i32;
                                word.push(c);
                            }
                            None => return Err(format!("missing '}}' after ${{{name}")),
                        }
                    }
                    let word = self.run(&word, false)?.concat();
                    let set = value.as_deref().is_some_and(|v| !v.is_empty());
                    match modifier {
                        Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
                        Some('+') => Ok(if set { word } else { String::new() }),
                        _ => Err(format!("unsupported modifier in ${{{name}:...}}")),
                    }
                }
                _ => Err(format!("missing '}}' after ${{{name}")),
            }
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if !is_name(c) {
                    break;
                }
                name.push(c);
                chars.next();
            }
            if name.is_empty() {
                return Ok("$".into());
            }
            Ok((self.lookup)(&name).unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("world".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn continuations_comments_and_keywords() {
        let text = "# syntax=whatever\nFROM busybox\n\nrun echo a \\\n  # inside\n  && echo b\nCMD [\"sh\"]\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].keyword, "RUN");
        assert_eq!(parsed[1].args, "echo a && echo b");
        assert_eq!(parsed[1].line, 4);
        assert_eq!(parsed[2].line, 7);
        assert_eq!(json_form(&parsed[2].args), Some(vec!["sh".to_string()]));
        assert_eq!(json_form("echo [x]"), None);
    }

    #[test]
    fn unknown_and_unsupported_instructions_are_named() {
        let err = parse("FROM a\nFOO bar\n").unwrap_err();
        assert_eq!(
            err,
            "Dockerfile parse error line 2: unknown instruction: FOO"
        );
        let err = parse("FROM a\nHEALTHCHECK NONE\n").unwrap_err();
        assert!(err.contains("HEALTHCHECK is not supported"), "{err}");
    }

    #[test]
    fn words_quotes_and_variables() {
        let w = words(
            r#"A="hello $NAME" B='$NAME' C=${NAME}s D=${MISSING:-dflt} E=${NAME:+yes} F=${EMPTY:-e} G=\$NAME"#,
            &env,
        )
        .unwrap();
        assert_eq!(
            w,
            [
                "A=hello world",
                "B=$NAME",
                "C=worlds",
                "D=dflt",
                "E=yes",
                "F=e",
                "G=$NAME"
            ]
        );
        assert_eq!(word("/srv/$NAME app", &env).unwrap(), "/srv/world app");
        assert_eq!(word("costs $ 5", &env).unwrap(), "costs $ 5");
        assert!(words("\"open", &env).is_err());
    }
}
