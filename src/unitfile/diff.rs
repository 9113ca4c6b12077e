//! A small line diff for the revision history: the longest common subsequence of lines,
//! shown as kept, removed (`-`) and added (`+`) lines. Unit files are short (tens of
//! lines), so the quadratic table is cheap; past [`MAX_CELLS`] the diff degrades to
//! "everything removed, everything added" instead of using a lot of memory.

/// Largest `old × new` line table computed.
pub const MAX_CELLS: usize = 4_000_000;

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffLine<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

impl DiffLine<'_> {
    /// `' '`, `'-'` or `'+'`.
    pub fn sign(&self) -> char {
        match self {
            DiffLine::Same(_) => ' ',
            DiffLine::Removed(_) => '-',
            DiffLine::Added(_) => '+',
        }
    }

    pub fn text(&self) -> &str {
        match self {
            DiffLine::Same(t) | DiffLine::Removed(t) | DiffLine::Added(t) => t,
        }
    }
}

/// The lines of `old` and `new`, aligned: what `new` removed from and added to `old`.
pub fn diff_lines<'a>(old: &'a str, new: &'a str) -> Vec<DiffLine<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common prefix and suffix first: the usual edit touches a few lines.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out: Vec<DiffLine> = a[..prefix].iter().map(|l| DiffLine::Same(l)).collect();
    if am.len().saturating_mul(bm.len()) > MAX_CELLS {
        out.extend(am.iter().map(|l| DiffLine::Removed(l)));
        out.extend(bm.iter().map(|l| DiffLine::Added(l)));
    } else {
        // lcs[i][j] = length of the LCS of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        let at = |i: usize, j: usize| i * (m + 1) + j;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[at(i, j)] = if am[i] == bm[j] {
                    lcs[at(i + 1, j + 1)] + 1
                } else {
                    lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                out.push(DiffLine::Same(am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
                // Removals before additions, like diff -u.
                out.push(DiffLine::Removed(am[i]));
                i += 1;
            } else {
                out.push(DiffLine::Added(bm[j]));
                j += 1;
            }
        }
    }
    out.extend(a[a.len() - suffix..].iter().map(|l| DiffLine::Same(l)));
    out
}

/// True when the diff changes nothing.
pub fn is_unchanged(lines: &[DiffLine]) -> bool {
    lines.iter().all(|l| matches!(l, DiffLine::Same(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &[DiffLine]) -> String {
        lines
            .iter()
            .map(|l| format!("{}{}\n", l.sign(), l.text()))
            .collect()
    }

    #[test]
    fn identical_texts_have_no_changes() {
        let d = diff_lines("a\nb\n", "a\nb\n");
        assert!(is_unchanged(&d));
        assert_eq!(render(&d), " a\n b\n");
        assert!(is_unchanged(&diff_lines("", "")));
    }

    #[test]
    fn one_changed_line() {
        let old = "[Service]\nExecStart=:/bin/a 8036\nRestart=no\n";
        let new = "[Service]\nExecStart=:/bin/a 8037\nRestart=no\n";
        assert_eq!(
            render(&diff_lines(old, new)),
            " [Service]\n-ExecStart=:/bin/a 8036\n+ExecStart=:/bin/a 8037\n Restart=no\n"
        );
    }

    #[test]
    fn insertions_and_deletions() {
        assert_eq!(render(&diff_lines("a\nc\n", "a\nb\nc\n")), " a\n+b\n c\n");
        assert_eq!(render(&diff_lines("a\nb\nc\n", "a\nc\n")), " a\n-b\n c\n");
        assert_eq!(render(&diff_lines("", "x\n")), "+x\n");
        assert_eq!(render(&diff_lines("x\n", "")), "-x\n");
        assert_eq!(
            render(&diff_lines("a\nb\nc\nd\n", "b\nx\nd\ny\n")),
            "-a\n b\n-c\n+x\n d\n+y\n"
        );
    }

    #[test]
    fn applying_the_diff_gives_both_sides() {
        let old = "1\n2\n3\n4\n5\n6\n7\n";
        let new = "0\n2\n3\nx\n5\n7\n8\n";
        let d = diff_lines(old, new);
        let left: Vec<&str> = d
            .iter()
            .filter(|l| !matches!(l, DiffLine::Added(_)))
            .map(DiffLine::text)
            .collect();
        let right: Vec<&str> = d
            .iter()
            .filter(|l| !matches!(l, DiffLine::Removed(_)))
            .map(DiffLine::text)
            .collect();
        assert_eq!(left, old.lines().collect::<Vec<_>>());
        assert_eq!(right, new.lines().collect::<Vec<_>>());
        // LCS length 4 (2 3 5 7): 3 removed, 3 added.
        assert_eq!(d.iter().filter(|l| l.sign() == '-').count(), 3);
    }

    #[test]
    fn huge_inputs_degrade_without_a_huge_table() {
        let old: String = (0..3000).map(|i| format!("a{i}\n")).collect();
        let new: String = (0..3000).map(|i| format!("b{i}\n")).collect();
        let d = diff_lines(&old, &new);
        assert_eq!(d.len(), 6000);
    }
}
