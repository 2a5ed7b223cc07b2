//! Paths under a prefix, collapsed: the few prefixes that cover many keys. Used where uploads
//! become a job (`trigger::coalesce`) and where queued jobs merge into a run (`lanes::merge`).

use std::cmp::Ordering;

/// Orders paths component by component (`a/b` before `a-b/c`, because `a` < `a-b`): byte
/// order with `/` ranked below every other byte. Equal to comparing `split('/')` sequences,
/// without building them.
pub fn component_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let same = common_prefix_len(a, b);
    match (a.get(same), b.get(same)) {
        (Some(x), Some(y)) => rank(*x).cmp(&rank(*y)),
        _ => a.len().cmp(&b.len()),
    }
}

/// Length of the common prefix of `a` and `b`, eight bytes at a time (keys in a batch share
/// long prefixes; this comparison is most of the sort).
pub(crate) fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    let (a_words, _) = a.as_chunks::<8>();
    let (b_words, _) = b.as_chunks::<8>();
    let mut same = 0;
    for (x, y) in a_words.iter().zip(b_words) {
        let diff = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if diff != 0 {
            // Little-endian: the lowest set bit is in the first differing byte.
            return same + (diff.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

fn rank(byte: u8) -> u16 {
    if byte == b'/' { 0 } else { u16::from(byte) + 1 }
}

/// Collapses relative keys into at most `cap` prefixes that together cover every key.
///
/// Keys are split on `/` into a tree. Starting from the root (the route's prefix, one path),
/// nodes are expanded into their children level by level, cheapest first, while the count
/// stays within `cap`. A node left unexpanded stands for its whole subtree. Returns
/// `(relative path, is_directory)` in key order; `("", true)` is the root itself.
pub fn collapse(keys: &[&str], cap: usize) -> Vec<(String, bool)> {
    let mut sorted: Vec<&str> = keys.iter().map(|k| k.trim_end_matches('/')).collect();
    // In component order, a node's children arrive sorted and contiguous, so each insertion
    // only compares with the last child (no map, no allocation). `plan` hands keys over
    // already in that order; checking is linear.
    if !sorted.is_sorted_by(|a, b| component_cmp(a, b).is_le()) {
        sorted.sort_unstable_by(|a, b| component_cmp(a, b));
    }
    sorted.dedup();
    let mut tree = Tree::default();
    for key in sorted {
        tree.insert(key);
    }
    let mut expanded = vec![false; tree.nodes.len()];
    let mut count = 1usize;
    let mut level = vec![0usize];
    while !level.is_empty() {
        let mut candidates: Vec<(usize, usize)> = level
            .iter()
            .filter(|&&n| !tree.nodes[n].children.is_empty())
            .map(|&n| {
                let node = &tree.nodes[n];
                (node.children.len() + usize::from(node.terminal) - 1, n)
            })
            .collect();
        candidates.sort_unstable();
        let mut next = Vec::new();
        for (growth, n) in candidates {
            if count + growth <= cap {
                count += growth;
                expanded[n] = true;
                next.extend_from_slice(&tree.nodes[n].children);
            }
        }
        level = next;
    }
    let mut out = Vec::with_capacity(count);
    tree.emit(0, &expanded, &mut String::new(), &mut out);
    out
}

#[derive(Debug)]
struct Node<'a> {
    name: &'a str,
    children: Vec<usize>,
    /// A key ends here.
    terminal: bool,
}

#[derive(Debug)]
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
}

impl Default for Tree<'_> {
    fn default() -> Self {
        Tree {
            nodes: vec![Node {
                name: "",
                children: Vec::new(),
                terminal: false,
            }],
        }
    }
}

impl<'a> Tree<'a> {
    /// Inserts a key; keys must arrive in component order.
    fn insert(&mut self, key: &'a str) {
        let mut at = 0;
        if !key.is_empty() {
            for part in key.split('/') {
                at = match self.nodes[at].children.last() {
                    Some(&child) if self.nodes[child].name == part => child,
                    _ => {
                        let child = self.nodes.len();
                        self.nodes.push(Node {
                            name: part,
                            children: Vec::new(),
                            terminal: false,
                        });
                        self.nodes[at].children.push(child);
                        child
                    }
                };
            }
        }
        self.nodes[at].terminal = true;
    }

    fn emit(&self, n: usize, expanded: &[bool], path: &mut String, out: &mut Vec<(String, bool)>) {
        let node = &self.nodes[n];
        if !expanded[n] {
            out.push((path.clone(), !node.children.is_empty()));
            return;
        }
        if node.terminal {
            out.push((path.clone(), false));
        }
        for &child in &node.children {
            let len = path.len();
            if n != 0 {
                path.push('/');
            }
            path.push_str(self.nodes[child].name);
            self.emit(child, expanded, path, out);
            path.truncate(len);
        }
    }
}
