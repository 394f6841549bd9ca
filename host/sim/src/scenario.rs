//! The scenario language: a line-oriented script of what the caller and the callees do and
//! what the app is expected to have done (see `README.md` for the reference).
//!
//! Invariants: parsing never panics on any input; every error names its line (1-based) and
//! the problem; a parsed scenario has exactly one `call` step; `config` and `file` lines are
//! declarations that hold for the whole run wherever they appear.

use thiserror::Error;

use crate::types::{Direction, HangupBy, HangupReason};

/// The keys a caller can press.
const DTMF_KEYS: &str = "0123456789*#ABCD";
/// The gap between the keys of one `press` step unless `gap=` says otherwise.
const DEFAULT_GAP_MS: u64 = 100;

/// A scenario that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed scenario: the steps in order, plus the file table and configuration values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub(crate) steps: Vec<Line>,
    pub(crate) files: Vec<(String, u64)>,
    pub(crate) config: Vec<(String, String)>,
}

/// One step with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) number: usize,
    pub(crate) source: String,
    pub(crate) step: Step,
}

/// A leg named in a step: the first leg's id, `out-N` for the N-th dialled leg, or the id
/// the app was given.
pub(crate) type LegRef = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Call {
        id: String,
        from: String,
        to: String,
        name: Option<String>,
        direction: Direction,
    },
    Wait(u64),
    Press {
        digits: Vec<char>,
        gap_ms: u64,
        leg: LegRef,
    },
    Hangup(LegRef),
    Answer {
        leg: String,
        after_ms: u64,
    },
    Reject {
        leg: String,
        status: u16,
        after_ms: u64,
    },
    HttpResponse {
        id: u64,
        result: Result<(u16, String), String>,
    },
    Expect(Expect),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    Answer(LegRef),
    EarlyMedia(LegRef),
    Reject {
        status: Option<u16>,
        leg: LegRef,
    },
    Hangup(LegRef),
    Say {
        text: String,
        leg: LegRef,
    },
    Play {
        file: String,
        leg: LegRef,
    },
    Music(LegRef),
    StopMedia(LegRef),
    Collect {
        max: Option<u32>,
        leg: LegRef,
    },
    Dial(String),
    Connect(Option<(String, String)>),
    Timer(Option<u64>),
    Log(String),
    Http(String),
    Request(String),
    Event(String),
    Finished {
        leg: LegRef,
        by: Option<HangupBy>,
        reason: Option<HangupReason>,
        status: Option<u16>,
    },
    NoMore,
    Idle,
    AppError,
}

impl Scenario {
    /// Parses a scenario text.
    pub fn parse(text: &str) -> Result<Scenario, ParseError> {
        let mut scenario = Scenario {
            steps: Vec::new(),
            files: Vec::new(),
            config: Vec::new(),
        };
        let mut calls = 0;
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let err = |message: String| ParseError {
                line: number,
                message,
            };
            let (tokens, end) = tokenize(raw).map_err(err)?;
            let Some((first, args)) = tokens.split_first() else {
                continue;
            };
            let mut args = Args::new(args);
            let step = match first.text.as_str() {
                "config" => {
                    for (name, value) in args.take_options() {
                        scenario.config.push((name, value));
                    }
                    args.finish().map_err(err)?;
                    if scenario.config.is_empty() {
                        return Err(err("config needs name=value".into()));
                    }
                    continue;
                }
                "file" => {
                    let id = args.word("a file id").map_err(err)?;
                    let duration = args
                        .word("a duration")
                        .and_then(|d| duration_ms(&d))
                        .map_err(err)?;
                    args.finish().map_err(err)?;
                    scenario.files.push((id, duration));
                    continue;
                }
                "call" => {
                    calls += 1;
                    if calls > 1 {
                        return Err(err("only one call per scenario".into()));
                    }
                    parse_call(&mut args).map_err(err)?
                }
                "wait" => {
                    let d = args
                        .word("a duration")
                        .and_then(|d| duration_ms(&d))
                        .map_err(err)?;
                    Step::Wait(d)
                }
                "press" => parse_press(&mut args).map_err(err)?,
                "hangup" => Step::Hangup(args.optional_word()),
                "answer" => {
                    let leg = args.word("a leg such as out-1").map_err(err)?;
                    let after_ms = after(&mut args).map_err(err)?;
                    Step::Answer { leg, after_ms }
                }
                "reject" | "busy" => {
                    let leg = args.word("a leg such as out-1").map_err(err)?;
                    let status = if first.text == "busy" {
                        486
                    } else {
                        args.word("a SIP status")
                            .and_then(|s| status(&s))
                            .map_err(err)?
                    };
                    let after_ms = after(&mut args).map_err(err)?;
                    Step::Reject {
                        leg,
                        status,
                        after_ms,
                    }
                }
                "http-response" => {
                    let id = request_id(&args.word("a request id").map_err(err)?).map_err(err)?;
                    let status = args
                        .word("a status")
                        .and_then(|s| match s.parse::<u16>() {
                            Ok(n) if (100..=599).contains(&n) => Ok(n),
                            _ => Err(format!("`{s}` is not an HTTP status")),
                        })
                        .map_err(err)?;
                    let body = args.optional_word().unwrap_or_default();
                    Step::HttpResponse {
                        id,
                        result: Ok((status, body)),
                    }
                }
                "http-error" => {
                    let id = request_id(&args.word("a request id").map_err(err)?).map_err(err)?;
                    let error = args.word("timeout, too-large or a message").map_err(err)?;
                    Step::HttpResponse {
                        id,
                        result: Err(error),
                    }
                }
                "expect" => Step::Expect(parse_expect(&mut args).map_err(err)?),
                other => {
                    return Err(err(format!(
                        "unknown step `{other}` (expected call, wait, press, hangup, answer, \
                         reject, busy, http-response, http-error, expect, file or config)"
                    )));
                }
            };
            args.finish().map_err(err)?;
            scenario.steps.push(Line {
                number,
                source: raw.chars().take(end).collect::<String>().trim().to_owned(),
                step,
            });
        }
        if calls == 0 {
            return Err(ParseError {
                line: text.lines().count().max(1),
                message: "the scenario has no `call` step".into(),
            });
        }
        Ok(scenario)
    }

    /// Adds configuration values (name, value), overriding the scenario's own `config` lines
    /// of the same name; `pbx simulate --config` and the SDK's `simulate_with_config` use it.
    pub fn with_config<N: Into<String>, V: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = (N, V)>,
    ) -> Scenario {
        for (name, value) in values {
            let name = name.into();
            self.config.retain(|(n, _)| *n != name);
            self.config.push((name, value.into()));
        }
        self
    }

    /// The configuration values the app will see.
    pub fn config(&self) -> &[(String, String)] {
        &self.config
    }

    /// The first leg's id (`leg-1` unless the `call` step says `id=`).
    pub fn first_leg(&self) -> &str {
        self.steps
            .iter()
            .find_map(|l| match &l.step {
                Step::Call { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .unwrap_or("leg-1")
    }

    /// Which way the first leg was set up.
    pub fn direction(&self) -> Direction {
        self.steps
            .iter()
            .find_map(|l| match &l.step {
                Step::Call { direction, .. } => Some(*direction),
                _ => None,
            })
            .unwrap_or(Direction::Inbound)
    }
}

fn parse_call(args: &mut Args<'_>) -> Result<Step, String> {
    let mut id = "leg-1".to_owned();
    let mut from = "caller".to_owned();
    let mut to = "1000".to_owned();
    let mut name = None;
    let mut direction = Direction::Inbound;
    for (key, value) in args.take_options() {
        match key.as_str() {
            "from" => from = value,
            "to" => to = value,
            "name" => name = Some(value),
            "id" => id = value,
            "direction" => {
                direction = match value.as_str() {
                    "inbound" => Direction::Inbound,
                    "outbound" => Direction::Outbound,
                    _ => {
                        return Err(format!(
                            "direction must be inbound or outbound, not {value}"
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown call option `{key}`")),
        }
    }
    if id.is_empty() {
        return Err("the call id must not be empty".into());
    }
    Ok(Step::Call {
        id,
        from,
        to,
        name,
        direction,
    })
}

fn parse_press(args: &mut Args<'_>) -> Result<Step, String> {
    let mut digits = Vec::new();
    let mut gap_ms = DEFAULT_GAP_MS;
    let mut leg = None;
    while let Some(tok) = args.next() {
        if let Some((key, value)) = tok.option() {
            match key {
                "gap" => gap_ms = duration_ms(value)?,
                "leg" => leg = Some(value.to_owned()),
                _ => return Err(format!("unknown press option `{key}`")),
            }
            continue;
        }
        for c in tok.text.chars() {
            if !DTMF_KEYS.contains(c) {
                return Err(format!("`{c}` is not a key (0-9 * # A-D)"));
            }
            digits.push(c);
        }
    }
    if digits.is_empty() {
        return Err("press needs at least one key".into());
    }
    Ok(Step::Press {
        digits,
        gap_ms,
        leg,
    })
}

fn after(args: &mut Args<'_>) -> Result<u64, String> {
    match args.optional_word() {
        None => Ok(0),
        Some(w) if w == "after" => duration_ms(&args.word("a duration")?),
        Some(w) => Err(format!("unexpected `{w}` (expected `after DURATION`)")),
    }
}

fn parse_expect(args: &mut Args<'_>) -> Result<Expect, String> {
    let what = args.word("what to expect")?;
    Ok(match what.as_str() {
        "answer" => Expect::Answer(args.optional_word()),
        "early-media" => Expect::EarlyMedia(args.optional_word()),
        "reject" => {
            let mut status_v = None;
            let mut leg = None;
            while let Some(w) = args.optional_word() {
                if w.chars().all(|c| c.is_ascii_digit()) {
                    status_v = Some(status(&w)?);
                } else {
                    leg = Some(w);
                }
            }
            Expect::Reject {
                status: status_v,
                leg,
            }
        }
        "hangup" => Expect::Hangup(args.optional_word()),
        "say" => Expect::Say {
            text: args.text("the text (a substring, in quotes)")?,
            leg: args.optional_word(),
        },
        "play" => Expect::Play {
            file: args.word("a file id")?,
            leg: args.optional_word(),
        },
        "music" => Expect::Music(args.optional_word()),
        "stop-media" => Expect::StopMedia(args.optional_word()),
        "collect" => {
            let mut max = None;
            let mut leg = None;
            while let Some(tok) = args.next() {
                match tok.option() {
                    Some(("max", v)) => {
                        max = Some(
                            v.parse::<u32>()
                                .map_err(|_| format!("max must be a number, not {v}"))?,
                        );
                    }
                    Some((k, _)) => return Err(format!("unknown collect option `{k}`")),
                    None => leg = Some(tok.text.clone()),
                }
            }
            Expect::Collect { max, leg }
        }
        "dial" => Expect::Dial(args.text("the target, such as user:bob")?),
        "connect" => match args.optional_word() {
            None => Expect::Connect(None),
            Some(a) => Expect::Connect(Some((a, args.word("the second leg")?))),
        },
        "timer" => Expect::Timer(match args.optional_word() {
            None => None,
            Some(d) => Some(duration_ms(&d)?),
        }),
        "log" => Expect::Log(args.text("the text (a substring, in quotes)")?),
        "http" => Expect::Http(args.text("the method and URL (a substring, in quotes)")?),
        "request" => Expect::Request(args.text("the text (a substring, in quotes)")?),
        "event" => Expect::Event(args.text("the event (a substring, in quotes)")?),
        "finished" => {
            let mut leg = None;
            let mut by = None;
            let mut reason = None;
            let mut status_v = None;
            while let Some(tok) = args.next() {
                match tok.option() {
                    Some(("by", "local")) => by = Some(HangupBy::Local),
                    Some(("by", "remote")) => by = Some(HangupBy::Remote),
                    Some(("by", v)) => return Err(format!("by must be local or remote, not {v}")),
                    Some(("reason", v)) => {
                        reason = Some(
                            HangupReason::parse(v)
                                .ok_or_else(|| format!("unknown hangup reason `{v}`"))?,
                        );
                    }
                    Some(("status", v)) => status_v = Some(status(v)?),
                    Some((k, _)) => return Err(format!("unknown finished option `{k}`")),
                    None => leg = Some(tok.text.clone()),
                }
            }
            Expect::Finished {
                leg,
                by,
                reason,
                status: status_v,
            }
        }
        "no-more" => Expect::NoMore,
        "idle" => Expect::Idle,
        "app-error" => Expect::AppError,
        other => {
            return Err(format!(
                "unknown expectation `{other}` (expected answer, early-media, reject, hangup, \
                 say, play, music, stop-media, collect, dial, connect, timer, log, http, request, event, \
                 finished, no-more, idle or app-error)"
            ));
        }
    })
}

fn request_id(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("`{s}` is not a request id (the number http.send returned)"))
}

fn status(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if (400..=699).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a SIP final status from 400 to 699")),
    }
}

/// Parses `500ms`, `3s`, `1.5s` or `2m` into milliseconds.
pub(crate) fn duration_ms(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration (such as 500ms, 3s, 1.5s or 2m)");
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if s == "0" {
        ("0", 1.0)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ms = (value * scale).round();
    if !(0.0..=1e12).contains(&ms) {
        return Err(bad());
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked to lie in 0..=1e12"
    )]
    Ok(ms as u64)
}

/// A token of a line: a word, or a quoted string with its escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

impl Token {
    /// `key=value` for an unquoted word with `=` (the value may have been quoted).
    fn option(&self) -> Option<(&str, &str)> {
        if self.quoted && !self.text.contains('=') {
            return None;
        }
        let (k, v) = self.text.split_once('=')?;
        (!k.is_empty() && !k.contains('"')).then_some((k, v))
    }
}

/// Splits a line into tokens, dropping its comment; also returns where the comment starts
/// (in characters), or the line's length.
///
/// A `#` at the start of a token begins a comment, except on a `press` line, where a token
/// of keys starting with `#` is a key when it is the last token or the next token starts
/// with `#` too (so `press 1 2 #   # comment` presses `#`).
fn tokenize(line: &str) -> Result<(Vec<Token>, usize), String> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            let is_press = tokens
                .first()
                .is_some_and(|t| t.text == "press" && !t.quoted);
            let end = (i..chars.len())
                .find(|&j| chars[j].is_whitespace())
                .unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            let next = (end..chars.len()).find(|&j| !chars[j].is_whitespace());
            let key = is_press
                && word.chars().all(|c| DTMF_KEYS.contains(c))
                && next.is_none_or(|j| chars[j] == '#');
            if !key {
                return Ok((tokens, i));
            }
        }
        let mut text = String::new();
        let mut quoted = false;
        while i < chars.len() && !chars[i].is_whitespace() {
            if chars[i] == '"' {
                quoted = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a quoted string is not closed".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('n') => text.push('\n'),
                                Some(&c) => text.push(c),
                                None => return Err("a quoted string is not closed".into()),
                            }
                            i += 2;
                        }
                        Some(&c) => {
                            text.push(c);
                            i += 1;
                        }
                    }
                }
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        tokens.push(Token { text, quoted });
    }
    Ok((tokens, chars.len()))
}

/// The arguments of a step, consumed front to back.
struct Args<'a> {
    tokens: &'a [Token],
    next: usize,
}

impl<'a> Args<'a> {
    fn new(tokens: &'a [Token]) -> Self {
        Args { tokens, next: 0 }
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.next)?;
        self.next += 1;
        Some(t)
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        self.next()
            .map(|t| t.text.clone())
            .ok_or_else(|| format!("missing {what}"))
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        self.word(what)
    }

    fn optional_word(&mut self) -> Option<String> {
        self.next().map(|t| t.text.clone())
    }

    /// Takes every remaining `key=value` token (stopping at the first that is not one).
    fn take_options(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(t) = self.tokens.get(self.next) {
            let Some((k, v)) = t.option() else { break };
            out.push((k.to_owned(), v.to_owned()));
            self.next += 1;
        }
        out
    }

    fn finish(&self) -> Result<(), String> {
        match self.tokens.get(self.next) {
            None => Ok(()),
            Some(t) => Err(format!("unexpected `{}`", t.text)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    #[test]
    fn parses_the_readme_example() {
        let s = Scenario::parse(
            r#"# hello answers and greets
call from=alice to=1000            # an inbound call arrives (leg "leg-1")
expect answer                      # the app answers
expect say "Hello"                 # substring match
wait 3s
press 1 2 3 #                      # DTMF digits, 100 ms apart
press 12# gap=200ms
hangup
expect finished
"#,
        )
        .unwrap();
        assert_eq!(s.steps.len(), 8);
        assert_eq!(s.steps[0].number, 2);
        assert_eq!(s.steps[0].source, "call from=alice to=1000");
        assert_eq!(s.steps[4].source, "press 1 2 3 #");
        assert_eq!(
            s.steps[4].step,
            Step::Press {
                digits: vec!['1', '2', '3', '#'],
                gap_ms: 100,
                leg: None
            }
        );
        assert_eq!(
            s.steps[5].step,
            Step::Press {
                digits: vec!['1', '2', '#'],
                gap_ms: 200,
                leg: None
            }
        );
        assert_eq!(
            s.steps[2].step,
            Step::Expect(Expect::Say {
                text: "Hello".into(),
                leg: None
            })
        );
        assert_eq!(s.first_leg(), "leg-1");
    }

    #[test]
    fn unknown_steps_and_bad_arguments_name_their_line() {
        let e = Scenario::parse("call from=a to=b\n\nfrobnicate 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown step `frobnicate`"), "{e}");
        assert_eq!(Scenario::parse("call\nwait 3 seconds").unwrap_err().line, 2);
        assert_eq!(Scenario::parse("call\nexpect say \"x").unwrap_err().line, 2);
        assert_eq!(
            Scenario::parse("call\nreject out-1 200").unwrap_err().line,
            2
        );
        assert_eq!(Scenario::parse("call\ncall").unwrap_err().line, 2);
        assert!(
            Scenario::parse("wait 1s")
                .unwrap_err()
                .message
                .contains("no `call`")
        );
        assert_eq!(Scenario::parse("call\nexpect nothing").unwrap_err().line, 2);
    }

    #[test]
    fn declarations_and_options() {
        let s = Scenario::parse(
            "config greeting=\"Hi there\" lang=en\nfile f_1 2.5s\ncall from=bob to=2000 name=\"Bob B\" id=x\nanswer out-1 after 2s\nreject out-2 486\nbusy out-3 after 1s\nexpect finished out-1 by=remote reason=busy status=486\n",
        )
        .unwrap();
        assert_eq!(
            s.config,
            [
                ("greeting".to_owned(), "Hi there".to_owned()),
                ("lang".to_owned(), "en".to_owned())
            ]
        );
        assert_eq!(s.files, [("f_1".to_owned(), 2500)]);
        assert_eq!(s.first_leg(), "x");
        assert_eq!(
            s.steps[1].step,
            Step::Answer {
                leg: "out-1".into(),
                after_ms: 2000
            }
        );
        assert_eq!(
            s.steps[3].step,
            Step::Reject {
                leg: "out-3".into(),
                status: 486,
                after_ms: 1000
            }
        );
        let s = s.with_config([("lang", "de")]);
        assert_eq!(s.config()[1], ("lang".to_owned(), "de".to_owned()));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("500ms"), Ok(500));
        assert_eq!(duration_ms("3s"), Ok(3000));
        assert_eq!(duration_ms("1.5s"), Ok(1500));
        assert_eq!(duration_ms("2m"), Ok(120_000));
        assert_eq!(duration_ms("0"), Ok(0));
        assert!(duration_ms("3").is_err());
        assert!(duration_ms("-1s").is_err());
        assert!(duration_ms("s").is_err());
        assert!(duration_ms("1e99s").is_err());
    }

    #[test]
    fn hash_on_press_lines() {
        let digits = |line: &str| match Scenario::parse(&format!("call\n{line}")).unwrap().steps[1]
            .step
            .clone()
        {
            Step::Press { digits, .. } => digits.into_iter().collect::<String>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(digits("press #"), "#");
        assert_eq!(digits("press 1 # # comment"), "1#");
        assert_eq!(digits("press 1 # comment"), "1");
        assert_eq!(digits("press 1#2 #"), "1#2#");
        assert_eq!(digits("press ## # x"), "##");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "\"",
            "call \"",
            "call\npress",
            "call\npress x",
            "call\nexpect",
            "#",
            "call\n\\",
            "call\nexpect finished by=x",
            "call\nwait .s",
            "call\nwait 1.2.3s",
            "call\nfile",
            "call\nanswer",
            "call\nanswer out-1 later",
            "call\nconfig",
            "call direction=sideways",
        ] {
            let _ = Scenario::parse(text);
        }
    }
}
