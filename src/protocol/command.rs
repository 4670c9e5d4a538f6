//! Typed Redis commands: name lookup (case-insensitive), arity and option checks,
//! and the replies of commands that need no keyspace.
//!
//! [`Command::parse`] sorts a framed [`Request`] by *where it must run*, which is
//! what a sharded server routes on:
//!
//! | variant | commands | runs on |
//! |---|---|---|
//! | [`Command::Local`] | PING, ECHO, COMMAND, CONFIG GET, CLIENT, SELECT, QUIT | the connection's shard ([`Local::write_reply`]) |
//! | [`Command::Key`] | GET, SET, INCR, DECR, INCRBY, DECRBY | the shard owning the key |
//! | [`Command::Multi`] | MGET, MSET, DEL, EXISTS | split by owner shard, gathered in argument order |
//! | [`Command::AllShards`] | DBSIZE, FLUSHALL | every shard, results combined |
//!
//! Error replies use Redis' wording (Redis 7), e.g. `-ERR wrong number of
//! arguments for 'get' command`. A [`CommandError`] concerns one well-framed
//! request: reply with it and keep the connection.

use std::fmt;

use super::resp::{self, Args, Request};

/// A parsed command, borrowing keys and values from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// An empty request (blank inline line or `*0`): no reply at all.
    Empty,
    /// Answered on the connection's shard without touching the keyspace.
    Local(Local<'a>),
    /// Operates on one key, on the shard owning it.
    Key(KeyCommand<'a>),
    /// Operates on several keys, possibly owned by several shards.
    Multi(MultiKey<'a>),
    /// Operates on every shard's keyspace.
    AllShards(AllShards),
}

/// Commands answered without the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local<'a> {
    /// `PING [message]`: `+PONG`, or the message as a bulk string.
    Ping(Option<&'a [u8]>),
    /// `ECHO message`.
    Echo(&'a [u8]),
    /// `COMMAND`, `COMMAND DOCS [name...]`: an empty array (no command docs kept).
    CommandDocs,
    /// `COMMAND INFO [name...]`: a null per name asked about.
    CommandInfo(Args<'a>),
    /// `COMMAND COUNT`: how many commands this server knows.
    CommandCount,
    /// `COMMAND LIST`: the names of the commands this server knows.
    CommandList,
    /// `CONFIG GET pattern...`: name/value pairs of the few settings reported.
    ConfigGet(Args<'a>),
    /// `CONFIG RESETSTAT`, `CLIENT SETNAME`, `CLIENT SETINFO`: `+OK`, nothing kept.
    Ok,
    /// `CLIENT GETNAME`: null (names are accepted but not stored).
    ClientGetName,
    /// `CLIENT ID`: the integer given by the server (see [`Local::write_reply`]).
    ClientId,
    /// `SELECT 0`: `+OK` (there is one database).
    Select,
    /// `QUIT`: `+OK`, then close.
    Quit,
}

/// What the connection does after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading requests.
    Continue,
    /// Flush the replies written so far, then close (QUIT).
    Close,
}

/// Single-key commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCommand<'a> {
    /// `GET key`.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// `SET key value [NX|XX] [EX s|PX ms|KEEPTTL]`.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// Condition and expiry.
        options: SetOptions,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add `delta` to the integer at `key`.
    IncrBy {
        /// The key.
        key: &'a [u8],
        /// The amount added (negative for DECR/DECRBY).
        delta: i64,
    },
}

impl<'a> KeyCommand<'a> {
    /// The key, which decides the owning shard. O(1).
    pub fn key(&self) -> &'a [u8] {
        match *self {
            KeyCommand::Get { key }
            | KeyCommand::Set { key, .. }
            | KeyCommand::IncrBy { key, .. } => key,
        }
    }
}

/// When SET applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always (no NX/XX).
    #[default]
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What SET does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// No option: the key does not expire (any old TTL is removed).
    #[default]
    Persist,
    /// `EX`/`PX`: expire this many milliseconds after the SET runs (> 0).
    AfterMillis(u64),
    /// `KEEPTTL`: keep the key's current TTL.
    Keep,
}

/// The options of a SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    /// NX / XX.
    pub condition: SetCondition,
    /// EX / PX / KEEPTTL.
    pub expiry: SetExpiry,
}

/// Multi-key commands. The argument views hold only keys (MGET, DEL, EXISTS) or
/// key/value pairs (MSET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiKey<'a> {
    /// `MGET key...`: an array of values in argument order.
    MGet(Args<'a>),
    /// `MSET key value [key value...]`: `+OK`. Not atomic across shards.
    MSet(Args<'a>),
    /// `DEL key...`: how many keys were removed.
    Del(Args<'a>),
    /// `EXISTS key...`: how many of the keys exist (repeats count again).
    Exists(Args<'a>),
}

impl<'a> MultiKey<'a> {
    /// The number of keys (for MSET, pairs). O(1).
    pub fn key_count(&self) -> usize {
        match self {
            MultiKey::MSet(a) => a.len() / 2,
            MultiKey::MGet(a) | MultiKey::Del(a) | MultiKey::Exists(a) => a.len(),
        }
    }

    /// Key `i` in argument order (for MSET, the key of pair `i`). O(1).
    pub fn key(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            MultiKey::MSet(a) => a.get(i.checked_mul(2)?),
            MultiKey::MGet(a) | MultiKey::Del(a) | MultiKey::Exists(a) => a.get(i),
        }
    }

    /// For MSET, the value of pair `i`; `None` for the other commands. O(1).
    pub fn value(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            MultiKey::MSet(a) => a.get(i.checked_mul(2)?.checked_add(1)?),
            _ => None,
        }
    }

    /// The keys in argument order.
    pub fn keys(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.key_count()).filter_map(move |i| self.key(i))
    }
}

/// Commands that touch every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllShards {
    /// `DBSIZE`: the sum of every shard's key count.
    DbSize,
    /// `FLUSHALL [ASYNC|SYNC]`: empty every shard (always synchronously).
    FlushAll,
}

/// Why a well-framed request is not a valid command. The connection continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError<'a> {
    /// The command name is not known.
    Unknown {
        /// The request, name first, to quote in the reply.
        args: Args<'a>,
    },
    /// Too few or too many arguments; `command` is Redis' lowercase full name
    /// (`get`, `config|get`).
    WrongArity {
        /// The command's full name.
        command: &'static str,
    },
    /// An option is unknown, repeated or conflicting.
    Syntax,
    /// An argument that must be a 64-bit integer is not.
    NotInteger,
    /// `DECRBY key -9223372036854775808` cannot be negated.
    DecrementOverflow,
    /// EX/PX is not a positive number of seconds/milliseconds that fits.
    InvalidExpire {
        /// The command's name (`set`).
        command: &'static str,
    },
    /// A container command (`CONFIG`, `CLIENT`, `COMMAND`) got an unknown subcommand.
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: &'a [u8],
        /// The container, upper case (`CONFIG`).
        command: &'static str,
    },
    /// `SELECT n` with `n != 0`.
    DbIndexOutOfRange,
    /// `CLIENT SETNAME` with spaces or control characters.
    BadClientName,
    /// `CLIENT SETINFO` with an attribute other than `LIB-NAME`/`LIB-VER`.
    UnknownClientInfo {
        /// The attribute as sent.
        attr: &'a [u8],
    },
}

/// Longest name or argument excerpt quoted in an error, as in Redis.
const QUOTE_MAX: usize = 128;

impl CommandError<'_> {
    /// Appends this error as a RESP error reply. O(length of the quoted
    /// excerpts, at most a few hundred bytes), no allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::command::CommandError;
    /// let mut out = Vec::new();
    /// CommandError::WrongArity { command: "get" }.write_reply(&mut out);
    /// assert_eq!(out, b"-ERR wrong number of arguments for 'get' command\r\n");
    /// ```
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(b'-');
        match *self {
            CommandError::Unknown { args } => {
                out.extend_from_slice(b"ERR unknown command '");
                let name = args.get(0).unwrap_or(&[]);
                out.extend_from_slice(&name[..name.len().min(QUOTE_MAX)]);
                out.extend_from_slice(b"', with args beginning with: ");
                let mut quoted = 0;
                for arg in args.skip(1).iter() {
                    if quoted >= QUOTE_MAX {
                        break;
                    }
                    let take = arg.len().min(QUOTE_MAX - quoted);
                    out.push(b'\'');
                    out.extend_from_slice(&arg[..take]);
                    out.extend_from_slice(b"' ");
                    quoted += take + 3;
                }
            }
            CommandError::WrongArity { command } => {
                out.extend_from_slice(b"ERR wrong number of arguments for '");
                out.extend_from_slice(command.as_bytes());
                out.extend_from_slice(b"' command");
            }
            CommandError::Syntax => out.extend_from_slice(b"ERR syntax error"),
            CommandError::NotInteger => {
                out.extend_from_slice(b"ERR value is not an integer or out of range")
            }
            CommandError::DecrementOverflow => {
                out.extend_from_slice(b"ERR decrement would overflow")
            }
            CommandError::InvalidExpire { command } => {
                out.extend_from_slice(b"ERR invalid expire time in '");
                out.extend_from_slice(command.as_bytes());
                out.extend_from_slice(b"' command");
            }
            CommandError::UnknownSubcommand { sub, command } => {
                out.extend_from_slice(b"ERR unknown subcommand '");
                out.extend_from_slice(&sub[..sub.len().min(QUOTE_MAX)]);
                out.extend_from_slice(b"'. Try ");
                out.extend_from_slice(command.as_bytes());
                out.extend_from_slice(b" HELP.");
            }
            CommandError::DbIndexOutOfRange => {
                out.extend_from_slice(b"ERR DB index is out of range")
            }
            CommandError::BadClientName => out.extend_from_slice(
                b"ERR Client names cannot contain spaces, newlines or special characters.",
            ),
            CommandError::UnknownClientInfo { attr } => {
                out.extend_from_slice(b"ERR Unrecognized option '");
                out.extend_from_slice(&attr[..attr.len().min(QUOTE_MAX)]);
                out.push(b'\'');
            }
        }
        // Quoted peer bytes may hold CR/LF; keep the reply one line.
        for b in &mut out[start + 1..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_reply(&mut out);
        // Drop the leading '-' and trailing CRLF.
        let text = out.get(1..out.len().saturating_sub(2)).unwrap_or(&[]);
        f.write_str(&String::from_utf8_lossy(text))
    }
}

impl std::error::Error for CommandError<'_> {}

/// What a name resolves to before its arguments are checked.
#[derive(Clone, Copy)]
enum Kind {
    Ping,
    Echo,
    Get,
    Set,
    Del,
    Exists,
    Incr,
    Decr,
    IncrBy,
    DecrBy,
    MGet,
    MSet,
    DbSize,
    FlushAll,
    Command,
    Config,
    Client,
    Select,
    Quit,
}

/// Known commands: lowercase name, Redis arity (n: exactly n arguments including
/// the name; -n: at least n), kind.
const COMMANDS: &[(&str, i32, Kind)] = &[
    ("get", 2, Kind::Get),
    ("set", -3, Kind::Set),
    ("ping", -1, Kind::Ping),
    ("incr", 2, Kind::Incr),
    ("mset", -3, Kind::MSet),
    ("mget", -2, Kind::MGet),
    ("del", -2, Kind::Del),
    ("exists", -2, Kind::Exists),
    ("decr", 2, Kind::Decr),
    ("incrby", 3, Kind::IncrBy),
    ("decrby", 3, Kind::DecrBy),
    ("echo", 2, Kind::Echo),
    ("dbsize", 1, Kind::DbSize),
    ("flushall", -1, Kind::FlushAll),
    ("command", -1, Kind::Command),
    ("config", -2, Kind::Config),
    ("client", -2, Kind::Client),
    ("select", 2, Kind::Select),
    ("quit", -1, Kind::Quit),
];

/// Settings `CONFIG GET` reports, with the values that describe this server: no
/// persistence, one database.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "no"), ("databases", "1")];

fn arity_ok(n: usize, arity: i32) -> bool {
    let want = arity.unsigned_abs() as usize;
    if arity >= 0 {
        n == want
    } else {
        n >= want
    }
}

fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

impl<'a> Command<'a> {
    /// Resolves a framed request into a command, checking name, arity and options.
    ///
    /// Cost: O(number of arguments) for option and pair checks; no allocation.
    ///
    /// # Errors
    ///
    /// [`CommandError`] for an unknown command or subcommand, wrong arity, a bad
    /// option or a non-integer where an integer is required. Reply with
    /// [`CommandError::write_reply`]; the stream stays usable.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::command::{Command, KeyCommand};
    /// use shardnet::protocol::resp::Parser;
    /// let mut p = Parser::default();
    /// let (req, _) = p.parse(b"incrby counter 5\r\n").unwrap().unwrap();
    /// assert_eq!(
    ///     Command::parse(&req),
    ///     Ok(Command::Key(KeyCommand::IncrBy { key: b"counter", delta: 5 }))
    /// );
    /// ```
    pub fn parse(req: &Request<'a>) -> Result<Command<'a>, CommandError<'a>> {
        let args = req.args();
        let Some(name) = args.get(0) else {
            return Ok(Command::Empty);
        };
        let Some(&(full, arity, kind)) = COMMANDS.iter().find(|(n, _, _)| is(name, n)) else {
            return Err(CommandError::Unknown { args });
        };
        if !arity_ok(args.len(), arity) {
            return Err(CommandError::WrongArity { command: full });
        }
        let arg = |i: usize| args.get(i).unwrap_or(&[]);
        let int = |i: usize| super::parse_i64(arg(i)).ok_or(CommandError::NotInteger);
        Ok(match kind {
            Kind::Ping => match args.len() {
                1 => Command::Local(Local::Ping(None)),
                2 => Command::Local(Local::Ping(Some(arg(1)))),
                _ => return Err(CommandError::WrongArity { command: full }),
            },
            Kind::Echo => Command::Local(Local::Echo(arg(1))),
            Kind::Get => Command::Key(KeyCommand::Get { key: arg(1) }),
            Kind::Set => Command::Key(KeyCommand::Set {
                key: arg(1),
                value: arg(2),
                options: parse_set_options(args.skip(3))?,
            }),
            Kind::Incr => Command::Key(KeyCommand::IncrBy {
                key: arg(1),
                delta: 1,
            }),
            Kind::Decr => Command::Key(KeyCommand::IncrBy {
                key: arg(1),
                delta: -1,
            }),
            Kind::IncrBy => Command::Key(KeyCommand::IncrBy {
                key: arg(1),
                delta: int(2)?,
            }),
            Kind::DecrBy => Command::Key(KeyCommand::IncrBy {
                key: arg(1),
                delta: int(2)?
                    .checked_neg()
                    .ok_or(CommandError::DecrementOverflow)?,
            }),
            Kind::Del => Command::Multi(MultiKey::Del(args.skip(1))),
            Kind::Exists => Command::Multi(MultiKey::Exists(args.skip(1))),
            Kind::MGet => Command::Multi(MultiKey::MGet(args.skip(1))),
            Kind::MSet => {
                if args.len() % 2 == 0 {
                    return Err(CommandError::WrongArity { command: full });
                }
                Command::Multi(MultiKey::MSet(args.skip(1)))
            }
            Kind::DbSize => Command::AllShards(AllShards::DbSize),
            Kind::FlushAll => match args.len() {
                1 => Command::AllShards(AllShards::FlushAll),
                2 if is(arg(1), "async") || is(arg(1), "sync") => {
                    Command::AllShards(AllShards::FlushAll)
                }
                _ => return Err(CommandError::Syntax),
            },
            Kind::Command => Command::Local(parse_command_subcommand(args)?),
            Kind::Config => Command::Local(parse_config(args)?),
            Kind::Client => Command::Local(parse_client(args)?),
            Kind::Select => {
                if int(1)? != 0 {
                    return Err(CommandError::DbIndexOutOfRange);
                }
                Command::Local(Local::Select)
            }
            Kind::Quit => Command::Local(Local::Quit),
        })
    }
}

fn parse_set_options(opts: Args<'_>) -> Result<SetOptions, CommandError<'_>> {
    let mut o = SetOptions::default();
    let mut expiry_seen = false;
    let mut i = 0;
    while let Some(opt) = opts.get(i) {
        if is(opt, "nx") || is(opt, "xx") {
            if o.condition != SetCondition::Always {
                return Err(CommandError::Syntax);
            }
            o.condition = if is(opt, "nx") {
                SetCondition::IfAbsent
            } else {
                SetCondition::IfPresent
            };
        } else if is(opt, "keepttl") {
            if expiry_seen {
                return Err(CommandError::Syntax);
            }
            expiry_seen = true;
            o.expiry = SetExpiry::Keep;
        } else if is(opt, "ex") || is(opt, "px") {
            if expiry_seen {
                return Err(CommandError::Syntax);
            }
            expiry_seen = true;
            i += 1;
            let n = super::parse_i64(opts.get(i).ok_or(CommandError::Syntax)?)
                .ok_or(CommandError::NotInteger)?;
            // Redis rejects non-positive times and seconds whose milliseconds
            // overflow a signed 64-bit integer.
            let ms = if is(opt, "ex") {
                n.checked_mul(1000)
            } else {
                Some(n)
            };
            match ms {
                Some(ms) if ms > 0 => o.expiry = SetExpiry::AfterMillis(ms as u64),
                _ => return Err(CommandError::InvalidExpire { command: "set" }),
            }
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

fn parse_command_subcommand(args: Args<'_>) -> Result<Local<'_>, CommandError<'_>> {
    let Some(sub) = args.get(1) else {
        return Ok(Local::CommandDocs);
    };
    if is(sub, "docs") {
        Ok(Local::CommandDocs)
    } else if is(sub, "info") {
        Ok(Local::CommandInfo(args.skip(2)))
    } else if is(sub, "count") {
        if args.len() != 2 {
            return Err(CommandError::WrongArity {
                command: "command|count",
            });
        }
        Ok(Local::CommandCount)
    } else if is(sub, "list") {
        if args.len() != 2 {
            // FILTERBY is not supported.
            return Err(CommandError::Syntax);
        }
        Ok(Local::CommandList)
    } else {
        Err(CommandError::UnknownSubcommand {
            sub,
            command: "COMMAND",
        })
    }
}

fn parse_config(args: Args<'_>) -> Result<Local<'_>, CommandError<'_>> {
    let sub = args.get(1).unwrap_or(&[]);
    if is(sub, "get") {
        if args.len() < 3 {
            return Err(CommandError::WrongArity {
                command: "config|get",
            });
        }
        Ok(Local::ConfigGet(args.skip(2)))
    } else if is(sub, "resetstat") {
        if args.len() != 2 {
            return Err(CommandError::WrongArity {
                command: "config|resetstat",
            });
        }
        Ok(Local::Ok)
    } else {
        Err(CommandError::UnknownSubcommand {
            sub,
            command: "CONFIG",
        })
    }
}

fn parse_client(args: Args<'_>) -> Result<Local<'_>, CommandError<'_>> {
    let sub = args.get(1).unwrap_or(&[]);
    let arity = |n: usize, command: &'static str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(CommandError::WrongArity { command })
        }
    };
    if is(sub, "setname") {
        arity(3, "client|setname")?;
        let name = args.get(2).unwrap_or(&[]);
        if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            return Err(CommandError::BadClientName);
        }
        Ok(Local::Ok)
    } else if is(sub, "setinfo") {
        arity(4, "client|setinfo")?;
        let attr = args.get(2).unwrap_or(&[]);
        if !is(attr, "lib-name") && !is(attr, "lib-ver") {
            return Err(CommandError::UnknownClientInfo { attr });
        }
        Ok(Local::Ok)
    } else if is(sub, "getname") {
        arity(2, "client|getname")?;
        Ok(Local::ClientGetName)
    } else if is(sub, "id") {
        arity(2, "client|id")?;
        Ok(Local::ClientId)
    } else {
        Err(CommandError::UnknownSubcommand {
            sub,
            command: "CLIENT",
        })
    }
}

impl Local<'_> {
    /// Appends this command's reply; `client_id` answers `CLIENT ID` (any number
    /// unique among the server's live connections). Returns whether to keep the
    /// connection.
    ///
    /// Cost: O(reply size); no allocation beyond `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardnet::protocol::command::{Flow, Local};
    /// let mut out = Vec::new();
    /// assert_eq!(Local::Ping(None).write_reply(&mut out, 1), Flow::Continue);
    /// assert_eq!(Local::Quit.write_reply(&mut out, 1), Flow::Close);
    /// assert_eq!(out, b"+PONG\r\n+OK\r\n");
    /// ```
    pub fn write_reply(&self, out: &mut Vec<u8>, client_id: u64) -> Flow {
        match *self {
            Local::Ping(None) => resp::write_simple(out, b"PONG"),
            Local::Ping(Some(msg)) | Local::Echo(msg) => resp::write_bulk(out, msg),
            Local::CommandDocs => resp::write_array_header(out, 0),
            Local::CommandInfo(names) => {
                resp::write_array_header(out, names.len());
                for _ in 0..names.len() {
                    resp::write_null(out);
                }
            }
            Local::CommandCount => resp::write_integer(out, COMMANDS.len() as i64),
            Local::CommandList => {
                resp::write_array_header(out, COMMANDS.len());
                for (name, _, _) in COMMANDS {
                    resp::write_bulk(out, name.as_bytes());
                }
            }
            Local::ConfigGet(patterns) => {
                let matches = |name: &str| patterns.iter().any(|p| p == b"*" || is(p, name));
                let n = CONFIG.iter().filter(|(name, _)| matches(name)).count();
                resp::write_array_header(out, n * 2);
                for (name, value) in CONFIG.iter().filter(|(name, _)| matches(name)) {
                    resp::write_bulk(out, name.as_bytes());
                    resp::write_bulk(out, value.as_bytes());
                }
            }
            Local::Ok | Local::Select => resp::write_simple(out, b"OK"),
            Local::ClientGetName => resp::write_null(out),
            Local::ClientId => {
                resp::write_integer(out, i64::try_from(client_id).unwrap_or(i64::MAX))
            }
            Local::Quit => {
                resp::write_simple(out, b"OK");
                return Flow::Close;
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::resp::Parser;

    /// Parses one inline request and runs `f` on the command result.
    fn with<R>(line: &str, f: impl FnOnce(Result<Command<'_>, CommandError<'_>>) -> R) -> R {
        let mut p = Parser::default();
        let buf = format!("{line}\r\n");
        let (req, _) = p.parse(buf.as_bytes()).unwrap().unwrap();
        f(Command::parse(&req))
    }

    fn error_text(line: &str) -> String {
        with(line, |r| {
            let mut out = Vec::new();
            r.expect_err(line).write_reply(&mut out);
            String::from_utf8(out).unwrap()
        })
    }

    fn local_reply(line: &str) -> (String, Flow) {
        with(line, |r| match r {
            Ok(Command::Local(l)) => {
                let mut out = Vec::new();
                let flow = l.write_reply(&mut out, 42);
                (String::from_utf8(out).unwrap(), flow)
            }
            other => panic!("{line}: {other:?}"),
        })
    }

    #[test]
    fn names_are_case_insensitive() {
        for line in ["get k", "GET k", "GeT k"] {
            with(line, |r| {
                assert_eq!(r, Ok(Command::Key(KeyCommand::Get { key: b"k" })))
            });
        }
    }

    #[test]
    fn key_commands() {
        with("SET k v", |r| {
            assert_eq!(
                r,
                Ok(Command::Key(KeyCommand::Set {
                    key: b"k",
                    value: b"v",
                    options: SetOptions::default()
                }))
            )
        });
        with("set k v nx px 1500", |r| {
            assert_eq!(
                r,
                Ok(Command::Key(KeyCommand::Set {
                    key: b"k",
                    value: b"v",
                    options: SetOptions {
                        condition: SetCondition::IfAbsent,
                        expiry: SetExpiry::AfterMillis(1500)
                    }
                }))
            )
        });
        with("set k v EX 2 XX", |r| match r {
            Ok(Command::Key(KeyCommand::Set { options, .. })) => assert_eq!(
                options,
                SetOptions {
                    condition: SetCondition::IfPresent,
                    expiry: SetExpiry::AfterMillis(2000)
                }
            ),
            other => panic!("{other:?}"),
        });
        with("set k v keepttl", |r| match r {
            Ok(Command::Key(KeyCommand::Set { options, .. })) => {
                assert_eq!(options.expiry, SetExpiry::Keep)
            }
            other => panic!("{other:?}"),
        });
        for (line, delta) in [
            ("incr c", 1),
            ("decr c", -1),
            ("incrby c -7", -7),
            ("decrby c 7", -7),
        ] {
            with(line, |r| {
                assert_eq!(r, Ok(Command::Key(KeyCommand::IncrBy { key: b"c", delta })))
            });
        }
        with("decrby c -9223372036854775807", |r| {
            assert_eq!(
                r.unwrap(),
                Command::Key(KeyCommand::IncrBy {
                    key: b"c",
                    delta: i64::MAX
                })
            )
        });
    }

    #[test]
    fn multi_key_commands_expose_keys_in_order() {
        with("MSET a 1 b 2 c 3", |r| {
            let Ok(Command::Multi(m)) = r else {
                panic!("{r:?}")
            };
            assert!(matches!(m, MultiKey::MSet(_)));
            assert_eq!(m.key_count(), 3);
            assert_eq!(m.keys().collect::<Vec<_>>(), vec![&b"a"[..], b"b", b"c"]);
            assert_eq!(m.value(2), Some(&b"3"[..]));
            assert_eq!(m.value(3), None);
        });
        for (line, want) in [
            ("MGET a b", "MGet"),
            ("DEL a b", "Del"),
            ("exists a b", "Exists"),
        ] {
            with(line, |r| {
                let Ok(Command::Multi(m)) = r else {
                    panic!("{r:?}")
                };
                assert!(format!("{m:?}").starts_with(want), "{m:?}");
                assert_eq!(m.keys().collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
                assert_eq!(m.value(0), None);
            });
        }
    }

    #[test]
    fn all_shard_and_empty_commands() {
        with("DBSIZE", |r| {
            assert_eq!(r, Ok(Command::AllShards(AllShards::DbSize)))
        });
        with("flushall", |r| {
            assert_eq!(r, Ok(Command::AllShards(AllShards::FlushAll)))
        });
        with("flushall ASYNC", |r| {
            assert_eq!(r, Ok(Command::AllShards(AllShards::FlushAll)))
        });
        with("", |r| assert_eq!(r, Ok(Command::Empty)));
        assert_eq!(error_text("flushall later"), "-ERR syntax error\r\n");
    }

    #[test]
    fn local_replies() {
        let cont = |s: &str| (s.to_string(), Flow::Continue);
        assert_eq!(local_reply("PING"), cont("+PONG\r\n"));
        assert_eq!(local_reply("ping hi"), cont("$2\r\nhi\r\n"));
        assert_eq!(local_reply("ECHO hello"), cont("$5\r\nhello\r\n"));
        assert_eq!(local_reply("COMMAND"), cont("*0\r\n"));
        assert_eq!(local_reply("COMMAND DOCS"), cont("*0\r\n"));
        assert_eq!(local_reply("COMMAND DOCS get set"), cont("*0\r\n"));
        assert_eq!(
            local_reply("COMMAND INFO get set"),
            cont("*2\r\n$-1\r\n$-1\r\n")
        );
        assert_eq!(
            local_reply("command count"),
            cont(&format!(":{}\r\n", COMMANDS.len()))
        );
        let (list, _) = local_reply("COMMAND LIST");
        assert!(
            list.starts_with(&format!("*{}\r\n$3\r\nget\r\n", COMMANDS.len())),
            "{list}"
        );
        assert_eq!(
            local_reply("CONFIG GET save"),
            cont("*2\r\n$4\r\nsave\r\n$0\r\n\r\n")
        );
        assert_eq!(
            local_reply("config get appendonly SAVE"),
            cont("*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")
        );
        assert_eq!(local_reply("CONFIG GET maxmemory"), cont("*0\r\n"));
        assert!(local_reply("CONFIG GET *").0.starts_with("*6\r\n"));
        assert_eq!(local_reply("CONFIG RESETSTAT"), cont("+OK\r\n"));
        assert_eq!(local_reply("CLIENT SETNAME bench"), cont("+OK\r\n"));
        assert_eq!(
            local_reply("CLIENT SETINFO lib-name redis-rs"),
            cont("+OK\r\n")
        );
        assert_eq!(local_reply("client setinfo LIB-VER 1.0"), cont("+OK\r\n"));
        assert_eq!(local_reply("CLIENT GETNAME"), cont("$-1\r\n"));
        assert_eq!(local_reply("CLIENT ID"), cont(":42\r\n"));
        assert_eq!(local_reply("SELECT 0"), cont("+OK\r\n"));
        assert_eq!(local_reply("QUIT"), ("+OK\r\n".to_string(), Flow::Close));
    }

    #[test]
    fn unknown_command_quotes_like_redis() {
        assert_eq!(
            error_text("FOO a bb"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'bb' \r\n"
        );
        assert_eq!(
            error_text("nope"),
            "-ERR unknown command 'nope', with args beginning with: \r\n"
        );
        // Long arguments are cut so the reply stays short.
        let long = "x".repeat(1000);
        let text = error_text(&format!("{long} {long} {long}"));
        assert!(text.len() < 400, "{}", text.len());
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn unknown_command_with_crlf_in_name_stays_one_line() {
        let mut p = Parser::default();
        let (req, _) = p
            .parse(b"*2\r\n$5\r\nA\r\nB\n\r\n$2\r\n\r\n\r\n")
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        Command::parse(&req).unwrap_err().write_reply(&mut out);
        assert_eq!(
            out,
            b"-ERR unknown command 'A  B ', with args beginning with: '  ' \r\n"
        );
    }

    #[test]
    fn arity_errors_name_the_command() {
        for (line, name) in [
            ("GET", "get"),
            ("GET a b", "get"),
            ("SET k", "set"),
            ("DEL", "del"),
            ("EXISTS", "exists"),
            ("INCR", "incr"),
            ("INCR a b", "incr"),
            ("DECR", "decr"),
            ("INCRBY a", "incrby"),
            ("DECRBY a", "decrby"),
            ("MGET", "mget"),
            ("MSET a", "mset"),
            ("MSET a 1 b", "mset"),
            ("PING a b", "ping"),
            ("ECHO", "echo"),
            ("ECHO a b", "echo"),
            ("DBSIZE x", "dbsize"),
            ("SELECT", "select"),
            ("CONFIG", "config"),
            ("CONFIG GET", "config|get"),
            ("CLIENT", "client"),
            ("CLIENT SETNAME", "client|setname"),
            ("CLIENT GETNAME x", "client|getname"),
            ("COMMAND COUNT x", "command|count"),
        ] {
            assert_eq!(
                error_text(line),
                format!("-ERR wrong number of arguments for '{name}' command\r\n"),
                "{line}"
            );
        }
    }

    #[test]
    fn option_and_value_errors() {
        let not_int = "-ERR value is not an integer or out of range\r\n";
        for (line, want) in [
            ("SET k v NX XX", "-ERR syntax error\r\n"),
            ("SET k v EX 1 PX 5", "-ERR syntax error\r\n"),
            ("SET k v EX 1 KEEPTTL", "-ERR syntax error\r\n"),
            ("SET k v EX", "-ERR syntax error\r\n"),
            ("SET k v BOGUS", "-ERR syntax error\r\n"),
            ("SET k v EX ten", not_int),
            (
                "SET k v EX 0",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v PX -5",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v EX 9223372036854776",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            ("INCRBY k 1.5", not_int),
            ("INCRBY k 99999999999999999999", not_int),
            (
                "DECRBY k -9223372036854775808",
                "-ERR decrement would overflow\r\n",
            ),
            ("SELECT x", not_int),
            ("SELECT 1", "-ERR DB index is out of range\r\n"),
            (
                "CONFIG SET save x",
                "-ERR unknown subcommand 'SET'. Try CONFIG HELP.\r\n",
            ),
            (
                "CLIENT KILL x",
                "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n",
            ),
            (
                "COMMAND GETKEYS x",
                "-ERR unknown subcommand 'GETKEYS'. Try COMMAND HELP.\r\n",
            ),
            ("COMMAND LIST FILTERBY x", "-ERR syntax error\r\n"),
            (
                "CLIENT SETINFO color red",
                "-ERR Unrecognized option 'color'\r\n",
            ),
        ] {
            assert_eq!(error_text(line), want, "{line}");
        }
        with("SET k v EX 9223372036854776", |r| {
            assert_eq!(r, Err(CommandError::InvalidExpire { command: "set" }))
        });
        // A name with a control character.
        let mut p = Parser::default();
        let (req, _) = p
            .parse(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$2\r\na\x01\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(Command::parse(&req), Err(CommandError::BadClientName));
        assert_eq!(
            CommandError::BadClientName.to_string(),
            "ERR Client names cannot contain spaces, newlines or special characters."
        );
    }
}
