//! Suggestions (event f): books to suggest for a cart.
//!
//! A candidate is any book of the catalog that is in stock and not in the cart. Candidates are
//! ranked by, in this order:
//! 1. how often they were bought together with the cart's books (past committed orders),
//! 2. whether a cart book has the same author,
//! 3. whether a cart book has the same genre,
//! 4. how many past orders held them (so an empty cart gets the popular books),
//!
//! and ties go to the smaller book id, so the same cart always gets the same answer.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Book};
use crate::checkout::SuggestedBook;

/// How many books a checkout suggests.
pub const DEFAULT_LIMIT: usize = 3;

/// Co-purchase counts from past committed orders: the caller records each committed order and
/// hands the result to [`suggest`]. Serializable, so a function can keep it in a store between
/// invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoughtTogether {
    /// `pairs[a][b]`: orders that held both `a` and `b`. Kept in both directions so a lookup is
    /// one probe; `BTreeMap` so the serialized form is stable.
    pairs: BTreeMap<String, BTreeMap<String, u32>>,
    /// `orders[a]`: orders that held `a`, the popularity that fills up the suggestions.
    orders: BTreeMap<String, u32>,
}

impl BoughtTogether {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one order. A book listed twice in the order counts once, and a book is never
    /// "bought together" with itself.
    pub fn record_order<S: AsRef<str>>(&mut self, book_ids: &[S]) {
        let ids: BTreeSet<&str> = book_ids.iter().map(|id| id.as_ref().trim()).filter(|id| !id.is_empty()).collect();
        for &a in &ids {
            let count = self.orders.entry(a.to_string()).or_default();
            *count = count.saturating_add(1);
            for &b in ids.iter().filter(|&&b| b != a) {
                let count = self.pairs.entry(a.to_string()).or_default().entry(b.to_string()).or_default();
                *count = count.saturating_add(1);
            }
        }
    }

    /// Orders that held both books.
    pub fn count(&self, a: &str, b: &str) -> u32 {
        self.pairs.get(a).and_then(|with_a| with_a.get(b)).copied().unwrap_or(0)
    }

    /// Orders that held the book.
    pub fn orders_with(&self, book_id: &str) -> u32 {
        self.orders.get(book_id).copied().unwrap_or(0)
    }
}

/// Up to `limit` books to suggest for a cart (see the module doc for the ranking). Never a book
/// in the cart, never a book out of stock, never the same book twice. Ids in the cart that are
/// not in the catalog are ignored.
pub fn suggest<S: AsRef<str>>(
    catalog: &[Book],
    cart_book_ids: &[S],
    bought_together: &BoughtTogether,
    limit: usize,
) -> Vec<SuggestedBook> {
    let in_cart: HashSet<&str> = cart_book_ids.iter().map(|id| id.as_ref().trim()).collect();
    let cart: Vec<&Book> = in_cart.iter().filter_map(|id| catalog::find_by_id(catalog, id)).collect();

    let mut seen = HashSet::new();
    let mut ranked: Vec<(Rank, &Book)> = catalog
        .iter()
        .filter(|book| book.in_stock() && !in_cart.contains(book.book_id.as_str()))
        .filter(|book| seen.insert(book.book_id.as_str()))
        .map(|book| (Rank::of(book, &cart, bought_together), book))
        .collect();
    ranked.sort_by(|(rank_a, a), (rank_b, b)| rank_a.cmp(rank_b).then_with(|| a.book_id.cmp(&b.book_id)));
    ranked.into_iter().take(limit).map(|(_, book)| SuggestedBook::from(book)).collect()
}

/// A candidate's standing; smaller sorts first. The field order is the ranking's order of
/// precedence, which the derived `Ord` compares lexicographically.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    bought_together: Reverse<u64>,
    same_author: Reverse<bool>,
    same_genre: Reverse<bool>,
    popularity: Reverse<u32>,
}

impl Rank {
    fn of(book: &Book, cart: &[&Book], bought_together: &BoughtTogether) -> Self {
        Rank {
            bought_together: Reverse(
                cart.iter().map(|c| u64::from(bought_together.count(&c.book_id, &book.book_id))).sum(),
            ),
            same_author: Reverse(cart.iter().any(|c| c.author == book.author)),
            same_genre: Reverse(cart.iter().any(|c| c.genre == book.genre)),
            popularity: Reverse(bought_together.orders_with(&book.book_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Genre, default_catalog};

    fn book(id: &str, author: &str, genre: Genre, stock: u32) -> Book {
        Book {
            book_id: id.into(),
            title: id.to_uppercase(),
            author: author.into(),
            genre,
            year: 2000,
            price_cents: 1000,
            stock,
        }
    }

    /// `cart` by Ann (fantasy); one candidate per rule, named so that the id order is the
    /// opposite of the expected ranking.
    fn shelf() -> Vec<Book> {
        vec![
            book("cart", "Ann", Genre::Fantasy, 5),
            book("d-together", "Zed", Genre::Poetry, 5),
            book("c-author", "Ann", Genre::History, 5),
            book("b-genre", "Bob", Genre::Fantasy, 5),
            book("a-other", "Cid", Genre::Science, 5),
        ]
    }

    fn ids(suggested: &[SuggestedBook]) -> Vec<&str> {
        suggested.iter().map(|b| b.book_id.as_str()).collect()
    }

    #[test]
    fn co_purchase_beats_author_beats_genre_beats_the_rest() {
        let mut together = BoughtTogether::new();
        together.record_order(&["cart", "d-together"]);
        let suggested = suggest(&shelf(), &["cart"], &together, 10);
        assert_eq!(ids(&suggested), ["d-together", "c-author", "b-genre", "a-other"]);
    }

    #[test]
    fn more_co_purchases_rank_higher() {
        let mut together = BoughtTogether::new();
        together.record_order(&["cart", "a-other"]);
        together.record_order(&["cart", "b-genre"]);
        together.record_order(&["cart", "b-genre"]);
        let suggested = suggest(&shelf(), &["cart"], &together, 2);
        assert_eq!(ids(&suggested), ["b-genre", "a-other"]);
    }

    #[test]
    fn cart_books_are_never_suggested() {
        let together = BoughtTogether::new();
        let suggested = suggest(&shelf(), &["cart", "c-author"], &together, 10);
        assert_eq!(ids(&suggested), ["b-genre", "a-other", "d-together"]);
        // Ids are compared trimmed, as the catalog's lookups do.
        assert!(!ids(&suggest(&shelf(), &[" cart "], &together, 10)).contains(&"cart"));
    }

    #[test]
    fn out_of_stock_books_are_never_suggested() {
        let mut catalog = shelf();
        catalog[1].stock = 0;
        let mut together = BoughtTogether::new();
        together.record_order(&["cart", "d-together"]);
        let suggested = suggest(&catalog, &["cart"], &together, 10);
        assert!(!ids(&suggested).contains(&"d-together"));
        assert_eq!(suggested.len(), 3);
    }

    #[test]
    fn no_book_is_suggested_twice() {
        let mut catalog = shelf();
        catalog.push(book("b-genre", "Bob", Genre::Fantasy, 5));
        let suggested = suggest(&catalog, &["cart", "cart"], &BoughtTogether::new(), 10);
        assert_eq!(ids(&suggested), ["c-author", "b-genre", "a-other", "d-together"]);
    }

    #[test]
    fn the_order_is_deterministic_whatever_the_catalog_order() {
        let mut together = BoughtTogether::new();
        together.record_order(&["x", "a-other"]);
        together.record_order(&["x", "d-together"]);
        let forward = suggest(&shelf(), &["cart"], &together, 10);
        let mut reversed = shelf();
        reversed.reverse();
        assert_eq!(suggest(&reversed, &["cart"], &together, 10), forward);
        assert_eq!(suggest(&shelf(), &["cart"], &together, 10), forward);
        // Equal on every rule, the smaller id comes first.
        let twins = [book("q", "Q", Genre::Poetry, 1), book("p", "P", Genre::Poetry, 1)];
        assert_eq!(ids(&suggest(&twins, &[] as &[&str], &together, 10)), ["p", "q"]);
    }

    #[test]
    fn an_empty_cart_gets_popular_books_then_any() {
        let mut together = BoughtTogether::new();
        together.record_order(&["d-together"]);
        together.record_order(&["d-together", "b-genre"]);
        let suggested = suggest(&shelf(), &[] as &[String], &together, DEFAULT_LIMIT);
        assert_eq!(ids(&suggested), ["d-together", "b-genre", "a-other"]);
        // With no history at all, still something to offer.
        assert_eq!(suggest(&shelf(), &[] as &[String], &BoughtTogether::new(), DEFAULT_LIMIT).len(), 3);
    }

    #[test]
    fn the_limit_is_respected() {
        let together = BoughtTogether::new();
        assert!(suggest(&shelf(), &["cart"], &together, 0).is_empty());
        assert_eq!(suggest(&shelf(), &["cart"], &together, 2).len(), 2);
        assert_eq!(suggest(&shelf(), &["cart"], &together, 100).len(), 4);
    }

    #[test]
    fn unknown_cart_ids_are_ignored() {
        let mut together = BoughtTogether::new();
        together.record_order(&["ghost", "a-other"]);
        let with_ghost = suggest(&shelf(), &["ghost"], &together, 10);
        assert_eq!(with_ghost, suggest(&shelf(), &[] as &[&str], &together, 10));
        assert_eq!(ids(&with_ghost)[0], "a-other", "popular, not bought together with a ghost");
        assert_eq!(suggest(&shelf(), &["ghost", "cart"], &together, 10), suggest(&shelf(), &["cart"], &together, 10));
    }

    #[test]
    fn orders_are_counted_once_per_pair_and_book() {
        let mut together = BoughtTogether::new();
        together.record_order(&["a", "b", "a", " "]);
        together.record_order(&["b", "c"]);
        assert_eq!((together.count("a", "b"), together.count("b", "a")), (1, 1));
        assert_eq!((together.count("a", "a"), together.count("a", "c")), (0, 0));
        assert_eq!((together.orders_with("a"), together.orders_with("b"), together.orders_with("z")), (1, 2, 0));
        let json = serde_json::to_string(&together).unwrap();
        assert_eq!(serde_json::from_str::<BoughtTogether>(&json).unwrap(), together);
    }

    #[test]
    fn the_default_catalog_suggests_sensibly() {
        let catalog = default_catalog().unwrap();
        let hobbit = ["the-hobbit".to_string()];
        let suggested = suggest(&catalog, &hobbit, &BoughtTogether::new(), DEFAULT_LIMIT);
        // Tolkien first; The Return of the King is sold out, so a fantasy book fills the third place.
        assert_eq!(ids(&suggested), ["the-fellowship-of-the-ring", "the-two-towers", "a-wizard-of-earthsea"]);
    }
}
