//! The nodes file of `kpki nodes`: a stream of `(line, node or error)`.
//!
//! Large clusters have thousands of nodes, so the list is streamed: [`NodeReader`] yields one
//! `(line, node)` at a time and never holds more than one YAML item; a line longer than
//! [`MAX_LINE`] is an error of its own and is not kept in memory.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::inputs::parse_ip;

/// The longest line a nodes file may have (a name and a few IPs fit in far less); longer lines
/// are reported, not read into memory.
pub const MAX_LINE: usize = 64 * 1024;

/// The most a nodes file may hold: 1 GiB, some 30 million nodes.
pub const MAX_INPUT: u64 = 1 << 30;

/// One node of a nodes file: its name (an RFC 1123 subdomain, lower-cased) and its IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name (`system:node:<name>`, the serving certificate's DNS SAN).
    pub name: String,
    /// Node IPs (serving certificate IP SANs), canonical, duplicates removed.
    pub ips: Vec<IpAddr>,
}

impl Node {
    /// Validates a name and IP strings as a nodes file gives them.
    pub(crate) fn parse<S: AsRef<str>>(name: &str, ips: &[S]) -> std::result::Result<Node, String> {
        let raw = name.trim();
        let name = raw.to_lowercase();
        if name.is_empty() {
            return Err("the node name is empty".into());
        }
        crate::inputs::check_dns_subdomain(&name)
            .map_err(|m| format!("invalid node name {raw:?}: {m}"))?;
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in ips {
            let ip = ip.as_ref().trim();
            let addr = parse_ip(ip).map_err(|m| format!("node {name}: {m}"))?;
            if addr.is_unspecified() || addr.is_multicast() {
                return Err(format!("node {name}: {addr} is not a usable node IP"));
            }
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        Ok(Node { name, ips: out })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Yaml,
}

/// A streaming reader of a nodes file, yielding `(line number, node or error)`.
///
/// Two formats, told apart by the first non-comment line:
/// * text: one node per line, `name[,ip,...]`; `#` starts a comment; blank lines are skipped;
/// * YAML: a list whose items are a name or a mapping `{name: n, ips: [ip, ...]}`
///   (block style, one item starting at each `- ` in the first column).
///
/// A read error ends the iteration; [`NodeReader::take_error`] returns it.
pub struct NodeReader<R> {
    input: R,
    line_no: usize,
    format: Option<Format>,
    /// YAML item being collected: its first line number and text.
    pending: Option<(usize, String)>,
    /// Continuation lines of a YAML item already reported as broken are dropped.
    skip_item: bool,
    /// Parsed entries not yet handed out.
    queue: VecDeque<(usize, std::result::Result<Node, String>)>,
    error: Option<std::io::Error>,
    done: bool,
    origin: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEntry {
    name: String,
    #[serde(default)]
    ips: Vec<String>,
}

impl<R: BufRead> NodeReader<R> {
    /// Reads nodes from `input`.
    pub fn new(input: R) -> NodeReader<R> {
        NodeReader {
            input,
            line_no: 0,
            format: None,
            pending: None,
            skip_item: false,
            queue: VecDeque::new(),
            error: None,
            done: false,
            origin: PathBuf::from("-"),
        }
    }

    /// Names the input in errors (a path; `-` for standard input).
    pub fn with_origin(mut self, origin: &Path) -> NodeReader<R> {
        self.origin = origin.to_path_buf();
        self
    }

    /// The input's name (a path; `-` for standard input).
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The number of the last line read.
    pub fn line(&self) -> usize {
        self.line_no
    }

    /// The read error that ended the iteration early, if any.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.error.take()
    }

    /// Next raw line (without the line ending); `None` at the end or on a read error. A line
    /// over [`MAX_LINE`] bytes is skipped without being kept and reported as an error.
    fn raw_line(&mut self) -> Option<std::result::Result<String, String>> {
        use std::io::Read;
        let mut buf = Vec::new();
        let limit = MAX_LINE as u64 + 1;
        match (&mut self.input).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        }
        self.line_no += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Drop the rest of the line as it streams by.
            loop {
                let (consumed, done) = match self.input.fill_buf() {
                    Ok([]) => (0, true),
                    Ok(avail) => match avail.iter().position(|b| *b == b'\n') {
                        Some(p) => (p + 1, true),
                        None => (avail.len(), false),
                    },
                    Err(e) => {
                        self.error = Some(e);
                        return None;
                    }
                };
                self.input.consume(consumed);
                if done {
                    break;
                }
            }
            return Some(Err(format!(
                "the line is longer than {MAX_LINE} bytes; a node is `name[,ip,...]`"
            )));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Some(String::from_utf8(buf).map_err(|_| "the line is not valid UTF-8".into()))
    }

    fn parse_text(line: &str) -> Option<std::result::Result<Node, String>> {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            return None;
        }
        let mut fields = content.split(',');
        let name = fields.next().unwrap_or("");
        let ips: Vec<&str> = fields.collect();
        if ips.iter().any(|f| f.trim().is_empty()) {
            return Some(Err(format!(
                "{content:?}: empty IP field (expected name[,ip,...])"
            )));
        }
        Some(Node::parse(name, &ips))
    }

    fn parse_yaml_item(text: &str) -> std::result::Result<Node, String> {
        let one = |what: &str, n: usize| format!("expected one list item, found {n} {what}");
        match serde_saphyr::from_str::<Vec<YamlEntry>>(text) {
            Ok(v) if v.len() == 1 => Node::parse(&v[0].name, &v[0].ips),
            Ok(v) => Err(one("entries", v.len())),
            Err(map_err) => {
                if let Ok(v) = serde_saphyr::from_str::<Vec<String>>(text) {
                    return match v.as_slice() {
                        [name] => Node::parse::<&str>(name, &[]),
                        _ => Err(one("names", v.len())),
                    };
                }
                let msg = map_err.to_string();
                let first = msg
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                Err(format!(
                    "not a node: expected `- name` or `- {{name: n, ips: [ip, ...]}}` ({first})"
                ))
            }
        }
    }
}

fn significant(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

impl<R: BufRead> NodeReader<R> {
    fn flush_item(&mut self) {
        if let Some((start, text)) = self.pending.take() {
            self.queue.push_back((start, Self::parse_yaml_item(&text)));
        }
    }

    fn feed(&mut self, n: usize, line: std::result::Result<String, String>) {
        let yaml = self.format == Some(Format::Yaml);
        let line = match line {
            Ok(l) => l,
            Err(m) => {
                if yaml {
                    if let Some((start, _)) = self.pending.take() {
                        // The item lost a line: issuing it from the rest could be wrong.
                        self.queue
                            .push_back((start, Err(format!("line {n} of this item: {m}"))));
                        self.skip_item = true;
                        return;
                    }
                }
                self.queue.push_back((n, Err(m)));
                return;
            }
        };
        if self.format.is_none() {
            if !significant(&line) {
                return;
            }
            self.format = Some(if line.starts_with('-') {
                Format::Yaml
            } else {
                Format::Text
            });
        }
        if self.format == Some(Format::Text) {
            if let Some(r) = Self::parse_text(&line) {
                self.queue.push_back((n, r));
            }
            return;
        }
        let indented = line.starts_with([' ', '\t']);
        if line == "-" || line.starts_with("- ") {
            self.flush_item();
            self.skip_item = false;
            self.pending = Some((n, line + "\n"));
        } else if !significant(&line) {
            // Blank and comment lines belong to no item.
        } else if !indented && (line == "---" || line == "...") {
            self.flush_item();
            self.skip_item = false;
        } else if !indented {
            self.flush_item();
            self.skip_item = false;
            self.queue.push_back((
                n,
                Err(format!(
                    "{:?}: expected a YAML list item (`- name` or `- name: n`) in the first column",
                    line.trim()
                )),
            ));
        } else if let Some((_, text)) = &mut self.pending {
            text.push_str(&line);
            text.push('\n');
        } else if !self.skip_item {
            self.queue.push_back((
                n,
                Err(format!(
                    "{:?}: indented line outside a list item",
                    line.trim()
                )),
            ));
        }
    }
}

impl<R: BufRead> Iterator for NodeReader<R> {
    type Item = (usize, std::result::Result<Node, String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.raw_line() {
                None => {
                    self.done = true;
                    self.flush_item();
                }
                Some(line) => self.feed(self.line_no, line),
            }
        }
    }
}

/// Reads a nodes file (`-` = standard input) for [`super::NodeIssuer::issue_all`].
///
/// Only a regular file, a pipe or standard input is read (a device such as `/dev/zero` never
/// ends), and at most [`MAX_INPUT`] bytes of it.
pub fn open_nodes(path: &Path) -> Result<NodeReader<Box<dyn BufRead>>> {
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(Capped::new(std::io::stdin())))
    } else {
        use std::os::unix::fs::FileTypeExt;
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let t = f.metadata().map_err(|e| Error::io(path, e))?.file_type();
        if t.is_dir() {
            return Err(Error::file(path, "is a directory, expected a nodes file"));
        }
        if !(t.is_file() || t.is_fifo()) {
            return Err(Error::file(
                path,
                "is not a regular file or a pipe (a device never ends), expected a nodes file",
            ));
        }
        Box::new(std::io::BufReader::new(Capped::new(f)))
    };
    Ok(NodeReader::new(input).with_origin(path))
}

/// A reader that fails, rather than ends, past [`MAX_INPUT`] bytes: a truncated list must not
/// pass for a complete one.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R> Capped<R> {
    fn new(inner: R) -> Capped<R> {
        Capped {
            inner,
            left: MAX_INPUT,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "the nodes file is larger than {} MiB",
                    MAX_INPUT >> 20
                ))),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Vec<(usize, std::result::Result<Node, String>)> {
        NodeReader::new(text).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn text_lines_with_comments_and_errors_keep_their_numbers() {
        let got = read(
            b"# c\n\nn1,10.0.0.1, fd00::1 \r\nN2 # x\nbad name\nn3,10.0.0.1,10.0.0.1\nn4,\n\xff\n",
        );
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(
            got[0],
            (
                3,
                Ok(Node {
                    name: "n1".into(),
                    ips: vec![ip("10.0.0.1"), ip("fd00::1")]
                })
            )
        );
        assert_eq!(
            got[1],
            (
                4,
                Ok(Node {
                    name: "n2".into(),
                    ips: vec![]
                })
            )
        );
        assert!(
            matches!(&got[2], (5, Err(m)) if m.contains("bad name")),
            "{got:?}"
        );
        assert_eq!(got[3].1.as_ref().map(|n| n.ips.len()), Ok(1));
        assert!(
            matches!(&got[4], (7, Err(m)) if m.contains("empty IP")),
            "{got:?}"
        );
        assert!(
            matches!(&got[5], (8, Err(m)) if m.contains("UTF-8")),
            "{got:?}"
        );
    }

    #[test]
    fn unusable_ips_are_refused() {
        assert!(Node::parse("n", &["0.0.0.0"]).is_err());
        assert!(Node::parse("n", &["224.0.0.1"]).is_err());
        assert!(Node::parse("n", &["::ffff:10.0.0.1"]).is_ok_and(|n| n.ips == [ip("10.0.0.1")]));
        assert!(Node::parse("", &[""; 0]).is_err());
    }

    #[test]
    fn yaml_items_and_stray_lines() {
        let got = read(b"---\n- a\n# c\n- name: b\n  ips:\n    - 10.0.0.2\nkey: v\n  indented\n- {name: c}\n...\n");
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(
            got[0],
            (
                2,
                Ok(Node {
                    name: "a".into(),
                    ips: vec![]
                })
            )
        );
        assert_eq!(
            got[1],
            (
                4,
                Ok(Node {
                    name: "b".into(),
                    ips: vec![ip("10.0.0.2")]
                })
            )
        );
        assert!(
            matches!(&got[2], (7, Err(m)) if m.contains("expected a YAML list item")),
            "{got:?}"
        );
        assert!(
            matches!(&got[3], (8, Err(m)) if m.contains("outside a list item")),
            "{got:?}"
        );
        assert_eq!(
            got[4],
            (
                9,
                Ok(Node {
                    name: "c".into(),
                    ips: vec![]
                })
            )
        );
    }

    #[test]
    fn overlong_lines_are_reported_not_kept() {
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        text.extend(b"\nb,10.0.0.2\n");
        let got = read(&text);
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(|g| g.0).collect::<Vec<_>>()
        );
        assert!(matches!(&got[1], (2, Err(m)) if m.contains("longer than")));
        assert!(matches!(&got[2], (3, Ok(n)) if n.name == "b"));
    }

    #[test]
    fn read_errors_end_the_stream_and_are_kept() {
        struct Failing(usize);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 = 0;
                buf[..3].copy_from_slice(b"a\nb");
                Ok(3)
            }
        }
        let mut r = NodeReader::new(std::io::BufReader::new(Failing(1)));
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got.len(), 1);
        assert!(r
            .take_error()
            .is_some_and(|e| e.to_string().contains("fire")));
    }
}
