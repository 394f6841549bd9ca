//! Typed values of the header fields the core reads: methods, URIs, name-addr, Via and CSeq.
//!
//! Grammar from RFC 3261 §25.1. Parsers take one unfolded header value (folding already turned
//! into single spaces) and never panic; they accept the linear whitespace the grammar allows
//! around separators (RFC 4475 `wsinv`) and reject what it forbids (`badaspec`, `baddn`,
//! `quotbal`, `badinv01`, `regbadct`). Values keep their raw text where printing must reproduce
//! it byte for byte (URIs, parameter values).

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// Why a header value did not parse; the caller names the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct HeaderError(pub(crate) &'static str);

/// A SIP method (RFC 3261 §7.1: case-sensitive tokens; extension methods are kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Starts a session.
    Invite,
    /// Acknowledges a final response to INVITE.
    Ack,
    /// Ends a session.
    Bye,
    /// Cancels a pending request.
    Cancel,
    /// Queries capabilities.
    Options,
    /// Registers a contact.
    Register,
    /// Mid-session information (RFC 6086), here DTMF.
    Info,
    /// Session modification without INVITE (RFC 3311).
    Update,
    /// Acknowledges a reliable provisional response (RFC 3262).
    Prack,
    /// Subscribes to an event package (RFC 6665).
    Subscribe,
    /// Reports an event (RFC 6665).
    Notify,
    /// Asks to contact a third party (RFC 3515).
    Refer,
    /// Carries an instant message (RFC 3428).
    Message,
    /// Publishes event state (RFC 3903).
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Parses a method token; anything that is a valid token but not a known method is `Other`.
    pub fn parse(s: &str) -> Result<Method, HeaderError> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return Err(HeaderError("method is not a token"));
        }
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        })
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// A header or URI parameter; the value keeps its raw text (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as written.
    pub name: String,
    /// Raw value, `None` for a flag parameter such as `lr`.
    pub value: Option<String>,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, ";{}={}", self.name, v),
            None => write!(f, ";{}", self.name),
        }
    }
}

/// Looks a parameter up by case-insensitive name: `Some(None)` for a flag, `Some(Some(v))` for a value.
fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

/// The URI schemes the core tells apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966).
    Tel,
    /// Anything else, lower-cased; a UAS answers 416 for it in the Request-URI.
    Other(String),
}

/// A URI: `sip`/`sips` are parsed into parts; `tel` and other schemes are kept opaque.
///
/// Parts are byte ranges into the raw text (one allocation per URI; a second only when the
/// user part has %-escapes to decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    raw: String,
    scheme: Scheme,
    user: Option<(usize, usize)>,
    user_decoded: Option<String>,
    host: (usize, usize),
    port: Option<u16>,
    /// The parameters after the host (or tel number), without the leading ';'.
    params: (usize, usize),
    has_headers: bool,
}

impl Uri {
    /// Parses a URI (no enclosing `<>`, no whitespace).
    pub fn parse(s: &str) -> Result<Uri, HeaderError> {
        if s.is_empty() {
            return Err(HeaderError("empty URI"));
        }
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(HeaderError("URI contains whitespace or a delimiter"));
        }
        let colon = s.find(':').ok_or(HeaderError("URI has no scheme"))?;
        let scheme_str = &s[..colon];
        let mut sb = scheme_str.bytes();
        let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
            && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(HeaderError("URI scheme is malformed"));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_str.to_ascii_lowercase())
        };
        let mut uri = Uri {
            raw: s.to_owned(),
            scheme,
            user: None,
            user_decoded: None,
            host: (0, 0),
            port: None,
            params: (s.len(), s.len()),
            has_headers: false,
        };
        let rest = colon + 1;
        match uri.scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(s, rest)?,
            Scheme::Tel => {
                let end = s[rest..].find(';').map_or(s.len(), |i| rest + i);
                if end == rest {
                    return Err(HeaderError("tel URI has no number"));
                }
                uri.set_user(s, rest, end);
                uri.set_params(s, (end + 1).min(s.len()), s.len())?;
            }
            Scheme::Other(_) => {
                if rest == s.len() {
                    return Err(HeaderError("URI is empty after the scheme"));
                }
            }
        }
        Ok(uri)
    }

    fn set_user(&mut self, s: &str, start: usize, end: usize) {
        self.user = Some((start, end));
        if s[start..end].contains('%') {
            self.user_decoded = Some(unescape(&s[start..end]));
        }
    }

    fn set_params(&mut self, s: &str, start: usize, end: usize) -> Result<(), HeaderError> {
        if start < end
            && s[start..end]
                .split(';')
                .any(|p| p.split('=').next() == Some(""))
        {
            return Err(HeaderError("empty URI parameter"));
        }
        self.params = (start, end);
        Ok(())
    }

    fn parse_sip(&mut self, s: &str, rest: usize) -> Result<(), HeaderError> {
        // RFC 3261 §25.1: '@' is allowed unescaped nowhere but as the userinfo terminator.
        let host_start = match s[rest..].find('@') {
            Some(at) => {
                let userinfo = &s[rest..rest + at];
                let user_len = userinfo.find(':').unwrap_or(userinfo.len());
                if user_len == 0 {
                    return Err(HeaderError("URI user part is empty"));
                }
                self.set_user(s, rest, rest + user_len);
                rest + at + 1
            }
            None => rest,
        };
        let host_end = s[host_start..]
            .find([';', '?'])
            .map_or(s.len(), |i| host_start + i);
        let (host, port) = parse_hostport(&s[host_start..host_end])?;
        self.host = (host_start, host_start + host.len());
        self.port = port;
        let query = s[host_end..].find('?').map_or(s.len(), |i| host_end + i);
        let params_start = if s[host_end..].starts_with(';') {
            host_end + 1
        } else {
            query
        };
        self.set_params(s, params_start, query)?;
        self.has_headers = query < s.len();
        Ok(())
    }

    /// The URI exactly as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part with %-escapes decoded (for `tel:`, the number); the called number of a PBX.
    pub fn user(&self) -> Option<&str> {
        match (&self.user_decoded, self.user) {
            (Some(d), _) => Some(d),
            (None, Some((a, b))) => self.raw.get(a..b),
            (None, None) => None,
        }
    }

    /// The host as written (IPv6 references keep their brackets); empty for opaque URIs.
    pub fn host(&self) -> &str {
        self.raw.get(self.host.0..self.host.1).unwrap_or("")
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The host as an IP address when it is a literal.
    pub fn host_ip(&self) -> Option<IpAddr> {
        host_ip(self.host())
    }

    /// The URI parameters in order, as (name, value); `None` for a flag such as `lr`.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let text = self.raw.get(self.params.0..self.params.1).unwrap_or("");
        text.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            })
    }

    /// A URI parameter by case-insensitive name: `Some(None)` for a flag such as `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True when the URI carries `?headers` (not allowed in a Request-URI, RFC 3261 §19.1.1).
    pub fn has_headers(&self) -> bool {
        self.has_headers
    }

    /// The same URI without parameters or headers, for a strict-routing Request-URI (RFC 3261 §12.2.1.1).
    pub fn without_params(&self) -> Uri {
        let end = match self.scheme {
            Scheme::Sip | Scheme::Sips => self.params.0.min(self.raw.len()),
            _ => self.raw.len(),
        };
        let end = if self.raw[..end].ends_with(';') || self.raw[..end].ends_with('?') {
            end - 1
        } else {
            end
        };
        let mut uri = self.clone();
        uri.raw.truncate(end);
        uri.params = (end, end);
        uri.has_headers = false;
        uri
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses `host[:port]` of a SIP URI or Via sent-by.
fn parse_hostport(s: &str) -> Result<(&str, Option<u16>), HeaderError> {
    let (host, port) = if s.starts_with('[') {
        let close = s
            .find(']')
            .ok_or(HeaderError("unterminated IPv6 reference"))?;
        let host = &s[..=close];
        if host[1..close].parse::<std::net::Ipv6Addr>().is_err() {
            return Err(HeaderError("malformed IPv6 reference"));
        }
        let rest = &s[close + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(HeaderError("garbage after IPv6 reference")),
        };
        (host, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(HeaderError("empty host"));
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(HeaderError("host contains invalid characters"));
    }
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, HeaderError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError("malformed port"));
    }
    p.parse().map_err(|_| HeaderError("port out of range"))
}

fn host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Decodes %HH escapes; a malformed escape is kept literally (RFC 4475 `esc02`).
pub(crate) fn unescape(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A position in one header value; the grammar helpers below move it forward.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Skips linear whitespace; returns whether any was skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `SWS b SWS`: a separator with optional whitespace around it.
    fn eat_sep(&mut self, b: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.eat(b) {
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_byte);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted-string starting at the cursor: returns (raw text with quotes, unescaped content).
    fn quoted(&mut self) -> Result<(&'a str, String), HeaderError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(HeaderError("expected a quoted string"));
        }
        let bytes = self.s.as_bytes();
        let mut out = Vec::new();
        loop {
            match bytes.get(self.pos) {
                None => return Err(HeaderError("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match bytes.get(self.pos + 1) {
                        Some(&c) if c <= 0x7f && c != b'\n' && c != b'\r' => {
                            out.push(c);
                            self.pos += 2;
                        }
                        _ => return Err(HeaderError("bad escape in quoted string")),
                    }
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok((&self.s[start..self.pos], text))
    }

    /// `*( SEMI generic-param )`, stopping before a comma or the end.
    fn params(&mut self) -> Result<Vec<Param>, HeaderError> {
        let mut params = Vec::new();
        loop {
            self.skip_ws();
            if !self.eat(b';') {
                return Ok(params);
            }
            self.skip_ws();
            let name = self.token().ok_or(HeaderError("empty parameter"))?;
            let value = if self.eat_sep(b'=') {
                if self.peek() == Some(b'"') {
                    Some(self.quoted()?.0.to_owned())
                } else {
                    let v =
                        self.take_while(|b| is_token_byte(b) || matches!(b, b':' | b'[' | b']'));
                    if v.is_empty() {
                        return Err(HeaderError("parameter value is missing"));
                    }
                    Some(v.to_owned())
                }
            } else {
                None
            };
            params.push(Param {
                name: name.to_owned(),
                value,
            });
        }
    }

    /// After one list element: end of value, or a comma before the next element.
    fn end_of_element(&mut self, list: bool) -> Result<bool, HeaderError> {
        self.skip_ws();
        if self.at_end() {
            return Ok(false);
        }
        if list && self.eat(b',') {
            self.skip_ws();
            if self.at_end() {
                return Err(HeaderError("empty list element"));
            }
            return Ok(true);
        }
        Err(HeaderError("unexpected characters"))
    }
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters after the address (`tag`, `expires`, `q`, ...).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses a single-valued field such as From or To.
    pub fn parse(value: &str) -> Result<NameAddr, HeaderError> {
        let mut cur = Cursor::new(value);
        let na = Self::parse_one(&mut cur)?;
        if cur.end_of_element(false)? {
            return Err(HeaderError("more than one value"));
        }
        Ok(na)
    }

    /// Parses a comma-separated list such as Contact or Record-Route.
    pub fn parse_list(value: &str) -> Result<Vec<NameAddr>, HeaderError> {
        let mut cur = Cursor::new(value);
        let mut out = Vec::new();
        loop {
            out.push(Self::parse_one(&mut cur)?);
            if !cur.end_of_element(true)? {
                return Ok(out);
            }
        }
    }

    fn parse_one(cur: &mut Cursor<'_>) -> Result<NameAddr, HeaderError> {
        cur.skip_ws();
        let display = if cur.peek() == Some(b'"') {
            let (_, text) = cur.quoted()?;
            cur.skip_ws();
            if cur.peek() != Some(b'<') {
                return Err(HeaderError("display name without <address>"));
            }
            Some(text)
        } else {
            // display-name = *(token LWS): tokens up to '<', otherwise this is an addr-spec.
            let save = cur.pos;
            let mut words: Vec<&str> = Vec::new();
            loop {
                cur.skip_ws();
                if cur.peek() == Some(b'<') {
                    break;
                }
                match cur.token() {
                    Some(t) => words.push(t),
                    None => {
                        words.clear();
                        cur.pos = save;
                        break;
                    }
                }
            }
            (!words.is_empty()).then(|| words.join(" "))
        };
        let uri = if cur.eat(b'<') {
            // LAQUOT/RAQUOT: no whitespace inside the brackets (RFC 4475 `badaspec`).
            let end = cur.rest().find('>').ok_or(HeaderError("missing '>'"))?;
            let text = &cur.rest()[..end];
            let uri = Uri::parse(text)?;
            cur.pos += end + 1;
            uri
        } else {
            let text = cur.take_while(|b| !matches!(b, b';' | b',' | b' ' | b'\t'));
            let uri = Uri::parse(text)?;
            // RFC 3261 §20: a URI with '?', ';' or ',' must be inside <> (RFC 4475 `regbadct`).
            if uri.has_headers() {
                return Err(HeaderError("URI with headers must be enclosed in <>"));
            }
            uri
        };
        let params = cur.params()?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// The `tag` parameter (RFC 3261 §19.3), which identifies the dialog.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A header parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            f.write_str("\"")?;
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One Via entry (RFC 3261 §20.42): the hop a response must retrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    transport: String,
    host: String,
    port: Option<u16>,
    params: Vec<Param>,
}

impl Via {
    /// Builds a Via for a request we send.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params: vec![Param {
                name: "branch".into(),
                value: Some(branch.to_owned()),
            }],
        }
    }

    /// Parses every entry of one Via header value.
    pub fn parse_list(value: &str) -> Result<Vec<Via>, HeaderError> {
        let mut cur = Cursor::new(value);
        let mut out = Vec::new();
        loop {
            out.push(Self::parse_one(&mut cur)?);
            if !cur.end_of_element(true)? {
                return Ok(out);
            }
        }
    }

    /// Parses the first entry of a Via header value and returns the unparsed rest (after the comma).
    pub fn parse_first(value: &str) -> Result<(Via, Option<&str>), HeaderError> {
        let mut cur = Cursor::new(value);
        let via = Self::parse_one(&mut cur)?;
        let more = cur.end_of_element(true)?;
        Ok((via, more.then(|| cur.rest())))
    }

    fn parse_one(cur: &mut Cursor<'_>) -> Result<Via, HeaderError> {
        cur.skip_ws();
        let proto = cur.token().ok_or(HeaderError("missing protocol"))?;
        if !proto.eq_ignore_ascii_case("SIP") || !cur.eat_sep(b'/') {
            return Err(HeaderError("protocol is not SIP"));
        }
        if cur.token() != Some("2.0") || !cur.eat_sep(b'/') {
            return Err(HeaderError("SIP version is not 2.0"));
        }
        let transport = cur.token().ok_or(HeaderError("missing transport"))?;
        if !cur.skip_ws() {
            return Err(HeaderError("missing space before sent-by"));
        }
        let host = if cur.peek() == Some(b'[') {
            let end = cur
                .rest()
                .find(']')
                .ok_or(HeaderError("unterminated IPv6"))?;
            let h = &cur.rest()[..=end];
            cur.pos += end + 1;
            h
        } else {
            cur.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        };
        let port = if cur.eat_sep(b':') {
            Some(parse_port(cur.take_while(|b| b.is_ascii_digit()))?)
        } else {
            None
        };
        let (host, _) = parse_hostport(host)?;
        let params = cur.params()?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        })
    }

    /// The transport token, upper-cased (`UDP`, `TCP`, ...).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// The sent-by host as written.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The sent-by host as an IP address when it is a literal.
    pub fn host_ip(&self) -> Option<IpAddr> {
        host_ip(&self.host)
    }

    /// `host:port` with the transport's default port, lower-cased: part of the transaction key (RFC 3261 §17.2.3).
    pub fn sent_by(&self) -> String {
        let port = self
            .port
            .unwrap_or(if self.transport == "TLS" { 5061 } else { 5060 });
        format!("{}:{}", self.host.to_ascii_lowercase(), port)
    }

    /// The branch parameter: the transaction identifier.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<IpAddr> {
        self.param("received").flatten().and_then(host_ip)
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when requested without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport")
            .map(|v| v.and_then(|p| p.parse::<u16>().ok()))
    }

    /// A parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Sets (or replaces) a parameter, keeping its position when present.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.params.push(Param {
                name: name.to_owned(),
                value,
            }),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The CSeq header field (RFC 3261 §20.16): orders requests in a dialog and names the method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, below 2^31 (RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The method the CSeq belongs to.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let mut cur = Cursor::new(value);
        cur.skip_ws();
        let digits = cur.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(HeaderError("missing sequence number"));
        }
        let seq: u32 = digits
            .parse()
            .ok()
            .filter(|n| *n < 1 << 31)
            .ok_or(HeaderError("sequence number out of range"))?;
        if !cur.skip_ws() {
            return Err(HeaderError("missing method"));
        }
        let method = Method::parse(cur.token().ok_or(HeaderError("missing method"))?)?;
        cur.skip_ws();
        if !cur.at_end() {
            return Err(HeaderError("unexpected characters"));
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Splits a comma-separated header value into trimmed elements, ignoring commas inside quotes
/// or angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The media type of a Content-Type or Accept element, lower-cased, without parameters.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:pw@[2001:db8::1]:5070;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.param("LR"), Some(None));
        assert!(u.has_headers());
        assert_eq!(
            u.without_params().as_str(),
            "sip:alice:pw@[2001:db8::1]:5070"
        );
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:a@").is_err());
        assert!(Uri::parse("sip:a b@c").is_err());
        assert_eq!(
            Uri::parse("tel:+15551234;phone-context=x").unwrap().user(),
            Some("+15551234")
        );
        assert_eq!(
            Uri::parse("soap.beep://192.0.2.103:3002").unwrap().scheme(),
            &Scheme::Other("soap.beep".into())
        );
    }

    #[test]
    fn unescape_keeps_bad_escapes() {
        assert_eq!(unescape("a%41%4"), "aA%4");
        assert_eq!(unescape("%Z%45"), "%ZE");
        assert_eq!(unescape("%"), "%");
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""A \"B\"" <sip:a@b.c>;tag=x ; q = 0.5"#).unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"A "B""#));
        assert_eq!(n.tag(), Some("x"));
        assert_eq!(n.param("q"), Some(Some("0.5")));
        let n = NameAddr::parse("sip:a@b.c;tag=1").unwrap();
        assert_eq!((n.uri.as_str(), n.tag()), ("sip:a@b.c", Some("1")));
        let n = NameAddr::parse("Bob Smith <sip:b@c>").unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob Smith"));
        assert!(NameAddr::parse("<sip:a@b>;;").is_err());
        assert!(NameAddr::parse("\"open <sip:a@b>").is_err());
        assert!(NameAddr::parse("< sip:a@b >").is_err());
        assert!(NameAddr::parse("<sip:a@b>, <sip:c@d>").is_err());
        assert_eq!(
            NameAddr::parse_list("<sip:a@b>, <sip:c@d>").unwrap().len(),
            2
        );
        let printed = NameAddr::parse(r#""q\"" <sip:a@b>;tag=1"#)
            .unwrap()
            .to_string();
        assert_eq!(printed, r#""q\"" <sip:a@b>;tag=1"#);
    }

    #[test]
    fn via_forms() {
        let v = Via::parse_list(
            "SIP / 2.0 / udp 10.0.0.1 : 5062 ; branch = z9hG4bKx ;rport, SIP/2.0/TCP h",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport(), "UDP");
        assert_eq!(v[0].port(), Some(5062));
        assert_eq!(v[0].branch(), Some("z9hG4bKx"));
        assert_eq!(v[0].rport(), Some(None));
        assert_eq!(v[1].sent_by(), "h:5060");
        let (first, rest) = Via::parse_first("SIP/2.0/UDP a;branch=1 , SIP/2.0/UDP b").unwrap();
        assert_eq!((first.host(), rest), ("a", Some("SIP/2.0/UDP b")));
        assert!(Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse_list("SIP/7.0/UDP h").is_err());
        let mut v = Via::new("udp", "[::1]", Some(5060), "z9hG4bK1");
        v.set_param("rport", Some("7".into()));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport=7"
        );
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(
            CSeq::parse("0009 INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("1 INVITE x").is_err());
    }

    #[test]
    fn lists_and_media_types() {
        assert_eq!(
            split_list(r#"a, "b,c" <x,y>, ,d"#),
            vec!["a", r#""b,c" <x,y>"#, "d"]
        );
        assert_eq!(media_type("Application/SDP ; charset=x"), "application/sdp");
    }
}
