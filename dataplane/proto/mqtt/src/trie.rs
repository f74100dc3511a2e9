//! A subscription index: a trie over topic levels (MQTT §4.7).
//!
//! Values are stored under topic filters; [`Trie::for_each_match`] visits every value whose
//! filter matches a topic name. Matching walks the topic's levels once, following the literal
//! child, the `+` child and the `#` entries at each level, so its cost grows with the topic's
//! depth and the number of matching filters, not with the number of subscriptions. The broker
//! keeps one per core. Filters must be valid ([`crate::TopicFilter`] guarantees it); a shared
//! subscription's inner filter is what gets indexed.

use std::collections::HashMap;

/// One node: the subscriptions whose filter ends here, and the children by next level.
#[derive(Debug)]
struct Node<T> {
    /// Children by literal next level.
    children: HashMap<Box<str>, Node<T>>,
    /// The `+` child, apart: matching looks for it at every level it walks, and a field costs
    /// no hashing.
    plus: Option<Box<Node<T>>>,
    /// Subscriptions whose filter ends at this node.
    here: Vec<T>,
    /// Subscriptions whose filter is this node's path followed by `/#`.
    hash: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            plus: None,
            here: Vec::new(),
            hash: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.here.is_empty()
            && self.hash.is_empty()
    }

    /// The child for `level`, `+` included.
    fn child(&self, level: &str) -> Option<&Node<T>> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<T>> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level)
        }
    }

    /// The child for `level`, created empty if absent.
    fn child_or_insert(&mut self, level: &str) -> &mut Node<T> {
        if level == "+" {
            self.plus.get_or_insert_default()
        } else {
            self.children.entry(level.into()).or_default()
        }
    }

    /// Drops the child for `level` (it is empty).
    fn remove_child(&mut self, level: &str) {
        if level == "+" {
            self.plus = None;
        } else {
            self.children.remove(level);
        }
    }
}

/// A trie of values keyed by topic filter. `T` is whatever a subscription needs at delivery.
#[derive(Debug)]
pub struct Trie<T> {
    root: Node<T>,
    len: usize,
}

impl<T> Default for Trie<T> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T> Trie<T> {
    /// The values stored under exactly `filter`, created empty if absent. `filter` must be a
    /// valid topic filter (the codec's `TopicFilter` guarantees it).
    pub fn slot(&mut self, filter: &str) -> Slot<'_, T> {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                return Slot {
                    vec: &mut node.hash,
                    len: &mut self.len,
                };
            }
            node = node.child_or_insert(level);
        }
        Slot {
            vec: &mut node.here,
            len: &mut self.len,
        }
    }

    /// The values stored under exactly `filter`, if its node exists (never creates one).
    pub fn get_mut(&mut self, filter: &str) -> Option<&mut Vec<T>> {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                return Some(&mut node.hash);
            }
            node = node.child_mut(level)?;
        }
        Some(&mut node.here)
    }

    /// Removes the values under `filter` for which `remove` returns true, pruning empty nodes.
    /// Returns how many were removed.
    pub fn remove_where(&mut self, filter: &str, remove: impl FnMut(&T) -> bool) -> usize {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_rec(&mut self.root, &levels, remove);
        self.len -= removed;
        removed
    }

    /// Calls `f` with every value whose filter matches `topic` (MQTT §4.7, with the `$` rule
    /// of §4.7.2: wildcards at the first level do not match topics starting with `$`).
    ///
    /// Runs for every message, on every trie: it allocates nothing and returns at once when
    /// the trie is empty.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&T)) {
        if self.len == 0 {
            return;
        }
        let dollar = topic.starts_with('$');
        match_rec(&self.root, Some(topic), 0, dollar, &mut f);
    }
}

/// The values stored under one filter.
#[derive(Debug)]
pub struct Slot<'a, T> {
    vec: &'a mut Vec<T>,
    len: &'a mut usize,
}

impl<T> Slot<'_, T> {
    /// Adds a value.
    pub fn push(&mut self, value: T) {
        self.vec.push(value);
        *self.len += 1;
    }

    /// The first value matching `pred`, mutably.
    pub fn find(&mut self, pred: impl FnMut(&&mut T) -> bool) -> Option<&mut T> {
        self.vec.iter_mut().find(pred)
    }
}

fn remove_rec<T>(node: &mut Node<T>, levels: &[&str], mut remove: impl FnMut(&T) -> bool) -> usize {
    match levels {
        [] => {
            let before = node.here.len();
            node.here.retain(|v| !remove(v));
            before - node.here.len()
        }
        ["#"] => {
            let before = node.hash.len();
            node.hash.retain(|v| !remove(v));
            before - node.hash.len()
        }
        [first, rest @ ..] => {
            let Some(child) = node.child_mut(first) else {
                return 0;
            };
            let n = remove_rec(child, rest, remove);
            if child.is_empty() {
                node.remove_child(first);
            }
            n
        }
    }
}

/// `levels`: the topic's levels not yet walked, `None` when there are none left (an empty
/// string is one empty level: `a/` has two levels).
fn match_rec<T>(
    node: &Node<T>,
    levels: Option<&str>,
    depth: usize,
    dollar: bool,
    f: &mut impl FnMut(&T),
) {
    let wild_ok = !(dollar && depth == 0);
    // `a/#` matches `a` itself as well as everything below it.
    if wild_ok {
        node.hash.iter().for_each(&mut *f);
    }
    let Some(levels) = levels else {
        node.here.iter().for_each(f);
        return;
    };
    // A byte search: `split_once('/')` goes through the generic char searcher, which showed
    // in the profile of the fan-in (levels are short, so a plain scan wins).
    let (first, rest) = match levels.bytes().position(|b| b == b'/') {
        Some(i) => (&levels[..i], Some(&levels[i + 1..])),
        None => (levels, None),
    };
    // A topic name has no `+` level (the codec refuses one), so `child` finds a literal here.
    if let Some(child) = node.child(first) {
        match_rec(child, rest, depth + 1, dollar, f);
    }
    if wild_ok
        && first != "+"
        && let Some(child) = node.plus.as_deref()
    {
        match_rec(child, rest, depth + 1, dollar, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(filters: &[&str], topic: &str) -> Vec<String> {
        let mut t = Trie::default();
        for f in filters {
            t.slot(f).push((*f).to_string());
        }
        let mut out = Vec::new();
        t.for_each_match(topic, |v| out.push(v.clone()));
        out.sort();
        out
    }

    #[test]
    fn wildcards_follow_the_spec() {
        let all = [
            "a/b", "a/+", "a/#", "#", "+/b", "+", "a/b/c", "+/+", "a/+/c",
        ];
        assert_eq!(
            matches(&all, "a/b"),
            ["#", "+/+", "+/b", "a/#", "a/+", "a/b"]
        );
        assert_eq!(matches(&all, "a"), ["#", "+", "a/#"]);
        assert_eq!(matches(&all, "a/b/c"), ["#", "a/#", "a/+/c", "a/b/c"]);
        // Empty levels are levels.
        assert_eq!(matches(&["+/+", "/#", "+"], "/x"), ["+/+", "/#"]);
        // A trailing empty level too: `a/` is two levels, `a` one.
        let trailing = ["a", "a/", "a/+", "a/#", "+", "+/+"];
        assert_eq!(matches(&trailing, "a/"), ["+/+", "a/", "a/#", "a/+"]);
        assert_eq!(matches(&trailing, "a"), ["+", "a", "a/#"]);
        assert_eq!(matches(&["+", "#", "/"], ""), ["#", "+"]);
    }

    #[test]
    fn dollar_topics_hide_from_leading_wildcards() {
        let all = ["#", "+/broker", "$SYS/#", "$SYS/+", "$SYS/broker"];
        assert_eq!(
            matches(&all, "$SYS/broker"),
            ["$SYS/#", "$SYS/+", "$SYS/broker"]
        );
    }

    #[test]
    fn a_literal_plus_level_in_a_topic_is_not_doubled() {
        // Topic names cannot hold `+`, but the trie must not visit the `+` child twice anyway.
        assert_eq!(matches(&["a/+"], "a/x"), ["a/+"]);
    }

    #[test]
    fn removal_prunes_and_counts() {
        let mut t: Trie<u32> = Trie::default();
        t.slot("a/b/c").push(1);
        t.slot("a/b/c").push(2);
        t.slot("a/#").push(3);
        assert_eq!(t.len, 3);
        assert_eq!(t.remove_where("a/b/c", |v| *v == 1), 1);
        assert_eq!(t.remove_where("a/b/c", |v| *v == 2), 1);
        assert_eq!(t.remove_where("a/b/x", |_| true), 0);
        assert!(!t.root.children["a"].children.contains_key("b"));
        assert_eq!(t.remove_where("a/#", |_| true), 1);
        assert!(t.root.is_empty());
        assert_eq!(t.len, 0);
    }

    #[test]
    fn plus_levels_are_found_and_pruned() {
        let mut t: Trie<u32> = Trie::default();
        t.slot("+/b/+").push(1);
        t.slot("+/b/c").push(2);
        assert_eq!(t.get_mut("+/b/+"), Some(&mut vec![1]));
        assert_eq!(t.get_mut("+/x/+"), None);
        let mut hits = Vec::new();
        t.for_each_match("a/b/c", |v| hits.push(*v));
        hits.sort_unstable();
        assert_eq!(hits, [1, 2]);
        assert_eq!(t.remove_where("+/b/+", |_| true), 1);
        assert!(
            t.root
                .plus
                .as_ref()
                .is_some_and(|p| p.children["b"].plus.is_none())
        );
        assert_eq!(t.remove_where("+/b/c", |_| true), 1);
        assert!(t.root.is_empty());
    }
}
