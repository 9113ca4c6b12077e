//! journalctl's `--grep`, in process: the same PCRE2 library journalctl loads
//! (`libpcre2-8.so.0`, linked by build.rs) with the same options, so that a pattern this
//! module accepts is one journalctl accepts, and matches the same messages.
//!
//! systemd 252 (`journalctl.c`) compiles the pattern with no option but `PCRE2_CASELESS`:
//! not in UTF mode (`.` is one byte, case folding is ASCII-only), caseless when asked or,
//! by default, when the pattern has no `[[:upper:]]` character (A-Z); it matches the first
//! `MESSAGE` field of an entry, and an entry without one does not match.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;

use super::{Case, TextFilter};

#[repr(C)]
struct Code {
    _private: [u8; 0],
}

#[repr(C)]
struct MatchData {
    _private: [u8; 0],
}

#[repr(C)]
struct MatchContext {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn pcre2_compile_8(
        pattern: *const u8,
        length: usize,
        options: u32,
        errorcode: *mut c_int,
        erroroffset: *mut usize,
        context: *mut c_void,
    ) -> *mut Code;
    fn pcre2_code_free_8(code: *mut Code);
    fn pcre2_match_data_create_from_pattern_8(
        code: *const Code,
        context: *mut c_void,
    ) -> *mut MatchData;
    fn pcre2_match_data_free_8(data: *mut MatchData);
    fn pcre2_match_8(
        code: *const Code,
        subject: *const u8,
        length: usize,
        start: usize,
        options: u32,
        data: *mut MatchData,
        context: *mut MatchContext,
    ) -> c_int;
    fn pcre2_get_ovector_pointer_8(data: *mut MatchData) -> *mut usize;
    fn pcre2_get_error_message_8(code: c_int, buffer: *mut u8, length: usize) -> c_int;
    fn pcre2_match_context_create_8(context: *mut c_void) -> *mut MatchContext;
    fn pcre2_set_match_limit_8(context: *mut MatchContext, limit: u32) -> c_int;
    fn pcre2_match_context_free_8(context: *mut MatchContext);
}

const PCRE2_CASELESS: u32 = 0x0000_0008;
const PCRE2_ERROR_NOMATCH: c_int = -1;

/// Backtracking steps one highlight search may take (PCRE2's default, which the filter
/// keeps like journalctl, is 10,000,000: seconds per line for a pathological pattern).
const HIGHLIGHT_MATCH_LIMIT: u32 = 100_000;

/// A pattern PCRE2 refused, or a match it gave up on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

fn error_message(code: c_int) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: PCRE2 writes at most `buf.len()` bytes, NUL-terminated.
    let n = unsafe { pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) => String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned(),
        Err(_) => format!("PCRE2 error {code}"),
    }
}

/// A compiled text filter. Matching only reads the compiled code, which PCRE2 allows from
/// several threads at once; each match has its own match data.
pub struct Pattern {
    code: NonNull<Code>,
}

// SAFETY: a compiled pcre2_code is immutable and may be shared between threads (pcre2api:
// "compiled patterns can be shared by threads").
unsafe impl Send for Pattern {}
unsafe impl Sync for Pattern {}

impl Drop for Pattern {
    fn drop(&mut self) {
        // SAFETY: compiled by pcre2_compile_8, freed once.
        unsafe { pcre2_code_free_8(self.code.as_ptr()) }
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pattern")
    }
}

/// journalctl's default: caseless unless the pattern has an upper-case letter.
fn caseless(pattern: &str, case: Case) -> bool {
    match case {
        Case::Insensitive => true,
        Case::Sensitive => false,
        Case::Auto => !pattern.bytes().any(|b| b.is_ascii_uppercase()),
    }
}

/// A match data block for one search, freed on drop.
struct Matches(NonNull<MatchData>);

impl Drop for Matches {
    fn drop(&mut self) {
        // SAFETY: created by pcre2_match_data_create_from_pattern_8, freed once.
        unsafe { pcre2_match_data_free_8(self.0.as_ptr()) }
    }
}

/// A match context with a lower backtracking limit, freed on drop.
struct Limit(NonNull<MatchContext>);

impl Drop for Limit {
    fn drop(&mut self) {
        // SAFETY: created by pcre2_match_context_create_8, freed once.
        unsafe { pcre2_match_context_free_8(self.0.as_ptr()) }
    }
}

impl Pattern {
    /// Compiles `filter` as journalctl would; the error is PCRE2's message.
    pub fn new(filter: &TextFilter) -> Result<Self, PatternError> {
        let pattern = filter.pattern();
        let options = if caseless(&pattern, filter.case) {
            PCRE2_CASELESS
        } else {
            0
        };
        let (mut code, mut offset) = (0, 0usize);
        // SAFETY: pattern bytes with their length; no compile context.
        let compiled = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                options,
                &mut code,
                &mut offset,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(compiled) {
            Some(code) => Ok(Self { code }),
            None => Err(PatternError(format!(
                "{} at offset {offset}",
                error_message(code)
            ))),
        }
    }

    fn match_data(&self) -> Result<Matches, PatternError> {
        // SAFETY: a valid compiled pattern; no general context.
        let data = unsafe {
            pcre2_match_data_create_from_pattern_8(self.code.as_ptr(), std::ptr::null_mut())
        };
        NonNull::new(data)
            .map(Matches)
            .ok_or_else(|| PatternError("out of memory".into()))
    }

    /// The first match in `subject` at or after `start`, as a byte range.
    fn find_at(
        &self,
        subject: &[u8],
        start: usize,
        data: &Matches,
        limit: Option<&Limit>,
    ) -> Result<Option<(usize, usize)>, PatternError> {
        // SAFETY: subject and its length; `data` was made for this pattern; the context,
        // if any, is valid.
        let rc = unsafe {
            pcre2_match_8(
                self.code.as_ptr(),
                subject.as_ptr(),
                subject.len(),
                start,
                0,
                data.0.as_ptr(),
                limit.map_or(std::ptr::null_mut(), |l| l.0.as_ptr()),
            )
        };
        if rc == PCRE2_ERROR_NOMATCH {
            return Ok(None);
        }
        if rc < 0 {
            return Err(PatternError(error_message(rc)));
        }
        // SAFETY: after a successful match the ovector holds at least one pair.
        let (from, to) = unsafe {
            let ovector = pcre2_get_ovector_pointer_8(data.0.as_ptr());
            (*ovector, *ovector.add(1))
        };
        // \K in a lookahead can put the start after the end; report it empty.
        Ok(Some((from.min(to), to)))
    }

    /// Does `subject` match (with PCRE2's default limits, as journalctl)? An error is a
    /// match PCRE2 gave up on (its match limit), which journalctl reports as a failure.
    pub fn is_match(&self, subject: &[u8]) -> Result<bool, PatternError> {
        let data = self.match_data()?;
        Ok(self.find_at(subject, 0, &data, None)?.is_some())
    }

    /// The byte ranges of the first `max` matches in `text` (adjacent ones joined), on
    /// character boundaries (the pattern works on bytes). A search that exceeds the
    /// highlight backtracking limit ends the list there.
    pub fn find_all(&self, text: &str, max: usize) -> Vec<(usize, usize)> {
        let (Ok(data), Some(limit)) = (self.match_data(), self.highlight_limit()) else {
            return Vec::new();
        };
        let bytes = text.as_bytes();
        let mut found: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for _ in 0..max {
            if start > bytes.len() {
                break;
            }
            let Ok(Some((from, to))) = self.find_at(bytes, start, &data, Some(&limit)) else {
                break;
            };
            let (mut from, mut to) = (from.max(start), to.max(from));
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            while !text.is_char_boundary(to) {
                to += 1;
            }
            if to > from {
                match found.last_mut() {
                    Some(last) if last.1 >= from => last.1 = last.1.max(to),
                    _ => found.push((from, to)),
                }
            }
            // An empty match: step over one character.
            start = if to > start {
                to
            } else {
                text[start..]
                    .chars()
                    .next()
                    .map_or(bytes.len() + 1, |c| start + c.len_utf8())
            };
        }
        found
    }

    fn highlight_limit(&self) -> Option<Limit> {
        // SAFETY: no general context; the limit is set on the context just made.
        let context = NonNull::new(unsafe { pcre2_match_context_create_8(std::ptr::null_mut()) })?;
        let limit = Limit(context);
        unsafe { pcre2_set_match_limit_8(limit.0.as_ptr(), HIGHLIGHT_MATCH_LIMIT) };
        Some(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str, regex: bool, case: Case) -> Result<Pattern, PatternError> {
        Pattern::new(&TextFilter {
            text: text.into(),
            regex,
            case,
        })
    }

    fn matches(p: &str, regex: bool, case: Case, subject: &str) -> bool {
        pattern(p, regex, case)
            .unwrap()
            .is_match(subject.as_bytes())
            .unwrap()
    }

    /// The table of journalctl 252's behaviour (research for issue 18, checked by hand).
    #[test]
    fn behaves_like_journalctl_grep() {
        use Case::*;
        assert!(matches("hello", true, Auto, "HELLO WORLD"), "smart case");
        assert!(!matches("Hello", true, Auto, "hello world"));
        assert!(matches("Hello", true, Auto, "Hello world"));
        assert!(!matches("hello", true, Sensitive, "Hello"));
        assert!(matches("Hello", true, Insensitive, "hello"));
        assert!(
            matches("(?i)HELLO", true, Sensitive, "hello"),
            "inline flags win"
        );
        assert!(!matches("äö", true, Auto, "ÄÖ"), "ASCII-only case folding");
        assert!(
            !matches("stra.e", true, Auto, "straße"),
            "byte mode: . is one byte"
        );
        assert!(matches("stra..e", true, Auto, "straße"));
        assert!(matches("(?<=world )grep", true, Auto, "hello world grep"));
        assert!(matches(r"\d+ ms", true, Auto, "took 20 ms"));
        // Literal text: special characters are themselves.
        assert!(matches(
            "alert(1)",
            false,
            Auto,
            "<script>alert(1)</script>"
        ));
        assert!(!matches(".*", false, Auto, "anything"));
        assert!(matches(".*", false, Auto, "a .* b"));
    }

    #[test]
    fn refused_patterns_say_why() {
        for bad in ["a(", "[z-a]", "*"] {
            let err = pattern(bad, true, Case::Auto).unwrap_err();
            assert!(!err.0.is_empty(), "{bad}");
        }
        assert!(
            pattern("a(", true, Case::Auto)
                .unwrap_err()
                .0
                .contains("missing closing parenthesis")
        );
        assert!(pattern("a(", false, Case::Auto).is_ok(), "literal");
    }

    #[test]
    fn all_matches_on_character_boundaries() {
        let p = pattern("o", true, Case::Auto).unwrap();
        assert_eq!(p.find_all("foo boo", 10), [(1, 3), (5, 7)]);
        assert_eq!(p.find_all("foo boo", 1), [(1, 2)], "one search");
        // An empty match never loops; a match inside a multi-byte character widens to it.
        let empty = pattern("x*", true, Case::Auto).unwrap();
        assert_eq!(empty.find_all("aé", 10), []);
        let byte = pattern(r"\xa9", true, Case::Auto).unwrap();
        assert_eq!(byte.find_all("café", 10), [(3, 5)]);
        // A pathological pattern stops at the highlight limit instead of taking seconds.
        let slow = pattern("(a+)+$", true, Case::Auto).unwrap();
        let started = std::time::Instant::now();
        assert!(
            slow.find_all(&format!("{}b", "a".repeat(40)), 10)
                .is_empty()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            slow.is_match(format!("{}b", "a".repeat(40)).as_bytes())
                .is_err()
        );
    }
}
