//! The few sd-journal calls the scan needs, on `libsystemd.so.0` (linked by build.rs by
//! its soname, so neither libsystemd-dev nor a bindings crate is needed to build).
//! Used only in the `journal-scan` child process (`scan`): the journal files are mapped
//! into memory, and journald truncating one under a reader is a SIGBUS on systemd 252.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::ptr::NonNull;

#[repr(C)]
struct SdJournal {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn sd_journal_open(ret: *mut *mut SdJournal, flags: c_int) -> c_int;
    fn sd_journal_close(j: *mut SdJournal);
    fn sd_journal_add_match(j: *mut SdJournal, data: *const c_void, size: usize) -> c_int;
    fn sd_journal_add_disjunction(j: *mut SdJournal) -> c_int;
    fn sd_journal_add_conjunction(j: *mut SdJournal) -> c_int;
    fn sd_journal_seek_realtime_usec(j: *mut SdJournal, usec: u64) -> c_int;
    fn sd_journal_next(j: *mut SdJournal) -> c_int;
    fn sd_journal_get_realtime_usec(j: *mut SdJournal, ret: *mut u64) -> c_int;
    fn sd_journal_enumerate_available_data(
        j: *mut SdJournal,
        data: *mut *const c_void,
        size: *mut usize,
    ) -> c_int;
    fn sd_journal_restart_data(j: *mut SdJournal);
    fn sd_journal_get_cursor(j: *mut SdJournal, cursor: *mut *mut c_char) -> c_int;
    fn sd_journal_seek_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
    fn sd_journal_test_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
    fn free(p: *mut c_void);
}

/// Only this machine's journal (not other machines' files in the directory), as
/// journalctl opens it by default.
const SD_JOURNAL_LOCAL_ONLY: c_int = 1;

/// sd-journal returns `-errno`.
fn check(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::from_raw_os_error(-rc))
    } else {
        Ok(rc)
    }
}

/// One step of building the match expression, in journalctl's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MatchStep {
    /// `FIELD=VALUE`: ORed with matches of the same field, ANDed with other fields.
    Match(String),
    /// Closes the current AND term: what follows is ORed with it.
    Disjunction,
    /// Closes the current OR group: what follows is ANDed with it.
    Conjunction,
}

/// An open journal, closed on drop. Not `Send`: sd-journal objects belong to one thread.
pub(super) struct Journal(NonNull<SdJournal>);

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: opened by sd_journal_open, closed once.
        unsafe { sd_journal_close(self.0.as_ptr()) }
    }
}

impl Journal {
    /// Opens the local journal and applies `steps`.
    pub(super) fn open(steps: &[MatchStep]) -> io::Result<Self> {
        let mut j = std::ptr::null_mut();
        // SAFETY: `j` receives the new object.
        check(unsafe { sd_journal_open(&mut j, SD_JOURNAL_LOCAL_ONLY) })?;
        let journal = Self(NonNull::new(j).ok_or_else(|| io::Error::other("no journal"))?);
        for step in steps {
            let j = journal.0.as_ptr();
            // SAFETY: a valid journal; match data with its length.
            check(unsafe {
                match step {
                    MatchStep::Match(m) => sd_journal_add_match(j, m.as_ptr().cast(), m.len()),
                    MatchStep::Disjunction => sd_journal_add_disjunction(j),
                    MatchStep::Conjunction => sd_journal_add_conjunction(j),
                }
            })?;
        }
        Ok(journal)
    }

    pub(super) fn seek_realtime(&mut self, usec: u64) -> io::Result<()> {
        // SAFETY: a valid journal.
        check(unsafe { sd_journal_seek_realtime_usec(self.0.as_ptr(), usec) }).map(drop)
    }

    /// Moves to the next matching entry; false at the end.
    pub(super) fn next(&mut self) -> io::Result<bool> {
        // SAFETY: a valid journal.
        check(unsafe { sd_journal_next(self.0.as_ptr()) }).map(|n| n > 0)
    }

    pub(super) fn realtime(&mut self) -> io::Result<u64> {
        let mut usec = 0;
        // SAFETY: a valid journal positioned on an entry.
        check(unsafe { sd_journal_get_realtime_usec(self.0.as_ptr(), &mut usec) })?;
        Ok(usec)
    }

    /// Calls `each` with every field of the current entry (`FIELD=VALUE` bytes) that can
    /// be read; fields it cannot decompress are skipped, as journalctl does.
    pub(super) fn for_each_field(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let j = self.0.as_ptr();
        // SAFETY: a valid journal positioned on an entry.
        unsafe { sd_journal_restart_data(j) };
        loop {
            let (mut data, mut size): (*const c_void, usize) = (std::ptr::null(), 0);
            // SAFETY: the data stays valid until the next call on this journal: `each`
            // gets a slice that cannot outlive this iteration.
            let rc =
                check(unsafe { sd_journal_enumerate_available_data(j, &mut data, &mut size) })?;
            if rc == 0 || data.is_null() {
                return Ok(());
            }
            each(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) });
        }
    }

    pub(super) fn cursor(&mut self) -> io::Result<CString> {
        let mut c: *mut c_char = std::ptr::null_mut();
        // SAFETY: a valid journal on an entry; the cursor is malloc'ed and ours to free.
        check(unsafe { sd_journal_get_cursor(self.0.as_ptr(), &mut c) })?;
        let cursor = unsafe { CStr::from_ptr(c) }.to_owned();
        unsafe { free(c.cast()) };
        Ok(cursor)
    }

    pub(super) fn seek_cursor(&mut self, cursor: &CStr) -> io::Result<()> {
        // SAFETY: a valid journal and a NUL-terminated cursor.
        check(unsafe { sd_journal_seek_cursor(self.0.as_ptr(), cursor.as_ptr()) }).map(drop)
    }

    /// Is the current entry the one `cursor` names?
    pub(super) fn is_at(&mut self, cursor: &CStr) -> io::Result<bool> {
        // SAFETY: a valid journal and a NUL-terminated cursor.
        check(unsafe { sd_journal_test_cursor(self.0.as_ptr(), cursor.as_ptr()) }).map(|n| n > 0)
    }
}
