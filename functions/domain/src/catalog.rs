//! The catalog: what a book is, the default catalog the books database is seeded with, its
//! validation, and the lookups the functions need (by id, and a cart line by id or title).
//!
//! The default catalog is `catalog/books.json`, embedded at compile time so a function needs no
//! file system or network to know the books; live stock lives in the books database under
//! [`book_key`].

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checkout::{Item, SuggestedBook};

/// Key prefix of books in the books database, so that the catalog is one prefix listing.
pub const BOOK_PREFIX: &str = "book/";

/// Highest price accepted: 1000.00 EUR. Anything above is a typo in the data (a misplaced
/// decimal point), not a book.
pub const MAX_PRICE_CENTS: u32 = 100_000;

/// Longest book id. Ids go into database keys and URLs, so they stay short.
pub const MAX_ID_LEN: usize = 80;

/// The catalog shipped with the code, one JSON array of [`Book`].
const DEFAULT_CATALOG_JSON: &str = include_str!("../catalog/books.json");

/// One book. On the wire (JSON) the fields are camelCase and the price is in EUR:
/// `{"bookId", "title", "author", "genre", "year", "price": 12.99, "stock"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    /// A short stable slug (`dune`, `emma`): lowercase ASCII letters, digits and dashes, so it can
    /// be a database key and a URL segment as it is.
    pub book_id: String,
    pub title: String,
    pub author: String,
    pub genre: Genre,
    /// Year of first publication.
    pub year: u16,
    /// Price in euro cents. Money is counted in integer cents so order totals and the payment
    /// amount add up exactly (binary floating point cannot hold 0.10); the wire form stays a EUR
    /// number with two decimals (`"price": 12.99`), which is what the storefront shows.
    #[serde(rename = "price", with = "eur")]
    pub price_cents: u32,
    /// Copies in stock. The catalog file holds the initial stock; the live figure is the books
    /// database's.
    pub stock: u32,
}

impl Book {
    /// Whether at least one copy can be sold.
    pub fn in_stock(&self) -> bool {
        self.stock > 0
    }
}

impl From<&Book> for SuggestedBook {
    fn from(book: &Book) -> Self {
        SuggestedBook { book_id: book.book_id.clone(), title: book.title.clone(), author: book.author.clone() }
    }
}

/// The catalog's genres: a small fixed set, so "same genre" means something and a typo in the
/// data is a parse error rather than a new genre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Genre {
    #[serde(rename = "science fiction")]
    ScienceFiction,
    #[serde(rename = "fantasy")]
    Fantasy,
    #[serde(rename = "classic")]
    Classic,
    #[serde(rename = "mystery")]
    Mystery,
    #[serde(rename = "history")]
    History,
    #[serde(rename = "science")]
    Science,
    #[serde(rename = "philosophy")]
    Philosophy,
    #[serde(rename = "children")]
    Children,
    #[serde(rename = "poetry")]
    Poetry,
    #[serde(rename = "computing")]
    Computing,
}

impl Genre {
    pub const ALL: [Genre; 10] = [
        Genre::ScienceFiction,
        Genre::Fantasy,
        Genre::Classic,
        Genre::Mystery,
        Genre::History,
        Genre::Science,
        Genre::Philosophy,
        Genre::Children,
        Genre::Poetry,
        Genre::Computing,
    ];

    /// The wire name, e.g. `"science fiction"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Genre::ScienceFiction => "science fiction",
            Genre::Fantasy => "fantasy",
            Genre::Classic => "classic",
            Genre::Mystery => "mystery",
            Genre::History => "history",
            Genre::Science => "science",
            Genre::Philosophy => "philosophy",
            Genre::Children => "children",
            Genre::Poetry => "poetry",
            Genre::Computing => "computing",
        }
    }
}

impl fmt::Display for Genre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a catalog was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not a JSON array of books: {0}")]
    Parse(String),
    #[error("book id {0:?} is not a slug (1 to {MAX_ID_LEN} lowercase letters, digits and dashes)")]
    BadId(String),
    #[error("book id {0:?} appears more than once")]
    DuplicateId(String),
    /// Two titles that differ only in case or spacing: a cart line naming one would be ambiguous.
    #[error("title {0:?} appears more than once")]
    DuplicateTitle(String),
    #[error("book {book_id:?} has an empty {field}")]
    EmptyField { book_id: String, field: &'static str },
    #[error("book {book_id:?} has price {cents} cents; it must be above 0 and at most {MAX_PRICE_CENTS}")]
    BadPrice { book_id: String, cents: u32 },
}

/// Why a cart line names no book of the catalog. The message is for the shopper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("there is no book with id {0:?}")]
    UnknownId(String),
    #[error("there is no book titled {0:?}")]
    UnknownTitle(String),
    #[error("the line names no book")]
    Unnamed,
}

/// The catalog shipped with the code, parsed and validated.
pub fn default_catalog() -> Result<Vec<Book>, CatalogError> {
    parse_catalog(DEFAULT_CATALOG_JSON)
}

/// Parses a JSON array of books and validates it. Parse errors name the failing element and
/// field (`[3].price: ...`).
pub fn parse_catalog(json: &str) -> Result<Vec<Book>, CatalogError> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    let books: Vec<Book> = serde_path_to_error::deserialize(deserializer)
        .map_err(|e| CatalogError::Parse(format!("{}: {}", e.path(), e.inner())))?;
    validate(&books)?;
    Ok(books)
}

/// Checks what the types cannot: ids are slugs and unique, titles are unique (ignoring case and
/// spacing, as [`find_by_title`] does), title and author are filled in, prices are sane.
/// Returns the first problem found.
pub fn validate(books: &[Book]) -> Result<(), CatalogError> {
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    for book in books {
        if !is_slug(&book.book_id) {
            return Err(CatalogError::BadId(book.book_id.clone()));
        }
        if !ids.insert(book.book_id.as_str()) {
            return Err(CatalogError::DuplicateId(book.book_id.clone()));
        }
        for (field, value) in [("title", &book.title), ("author", &book.author)] {
            if value.trim().is_empty() {
                return Err(CatalogError::EmptyField { book_id: book.book_id.clone(), field });
            }
        }
        if !titles.insert(normalize_title(&book.title)) {
            return Err(CatalogError::DuplicateTitle(book.title.clone()));
        }
        if book.price_cents == 0 || book.price_cents > MAX_PRICE_CENTS {
            return Err(CatalogError::BadPrice { book_id: book.book_id.clone(), cents: book.price_cents });
        }
    }
    Ok(())
}

/// The book with this id.
pub fn find_by_id<'a>(catalog: &'a [Book], book_id: &str) -> Option<&'a Book> {
    let book_id = book_id.trim();
    catalog.iter().find(|book| book.book_id == book_id)
}

/// The book with this title, ignoring case and surrounding or repeated spaces: the course's page
/// sends only the title, typed by people.
pub fn find_by_title<'a>(catalog: &'a [Book], title: &str) -> Option<&'a Book> {
    let wanted = normalize_title(title);
    catalog.iter().find(|book| normalize_title(&book.title) == wanted)
}

/// The book a cart line names. The id wins when one is given (the storefront sends it and it is
/// exact); otherwise the title (`name`, all the course's page sends). An unknown id is an error
/// even when the title would match, so a stale storefront is noticed rather than guessed around.
pub fn resolve<'a>(catalog: &'a [Book], book_id: Option<&str>, name: Option<&str>) -> Result<&'a Book, ResolveError> {
    match (present(book_id), present(name)) {
        (Some(id), _) => find_by_id(catalog, id).ok_or_else(|| ResolveError::UnknownId(id.to_string())),
        (None, Some(title)) => {
            find_by_title(catalog, title).ok_or_else(|| ResolveError::UnknownTitle(title.to_string()))
        }
        (None, None) => Err(ResolveError::Unnamed),
    }
}

/// [`resolve`] for a checkout line.
pub fn resolve_item<'a>(catalog: &'a [Book], item: &Item) -> Result<&'a Book, ResolveError> {
    resolve(catalog, item.book_id.as_deref(), item.name.as_deref())
}

/// The books database key of a book: `book/{id}`.
pub fn book_key(book_id: &str) -> String {
    format!("{BOOK_PREFIX}{book_id}")
}

/// The book id in a books database key, or `None` when the key is not a book's.
pub fn book_id_from_key(key: &str) -> Option<&str> {
    key.strip_prefix(BOOK_PREFIX).filter(|id| !id.is_empty())
}

/// The trimmed text, or `None` when it is absent or blank.
fn present(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

fn is_slug(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn normalize_title(title: &str) -> String {
    title.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Serde adapter between cents in Rust and a EUR number with at most two decimals on the wire.
mod eur {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(cents: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        // Division is correctly rounded, so 1299 / 100 is the same f64 as the literal 12.99 and
        // prints as `12.99`.
        serializer.serialize_f64(f64::from(*cents) / 100.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        let euros = f64::deserialize(deserializer)?;
        let cents = (euros * 100.0).round();
        // The tolerance absorbs the binary representation of decimals (12.99 * 100 is
        // 1298.9999999999998); a third decimal is far above it.
        let whole_cents = (euros * 100.0 - cents).abs() < 1e-6;
        if !euros.is_finite() || euros < 0.0 || !whole_cents || cents > f64::from(u32::MAX) {
            return Err(D::Error::custom(format!(
                "{euros} is not a price: expected a non-negative amount in EUR with at most 2 decimals"
            )));
        }
        // In range and whole, checked above.
        Ok(cents as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn book(id: &str, title: &str, author: &str, price_cents: u32) -> Book {
        Book {
            book_id: id.into(),
            title: title.into(),
            author: author.into(),
            genre: Genre::Classic,
            year: 1900,
            price_cents,
            stock: 1,
        }
    }

    #[test]
    fn the_default_catalog_parses_and_is_big_enough() {
        let catalog = default_catalog().unwrap();
        assert!(catalog.len() >= 60, "{} books", catalog.len());
        let ids: HashSet<_> = catalog.iter().map(|b| &b.book_id).collect();
        assert_eq!(ids.len(), catalog.len());

        let mut per_author: HashMap<&str, usize> = HashMap::new();
        for b in &catalog {
            *per_author.entry(&b.author).or_default() += 1;
        }
        let prolific = per_author.values().filter(|&&n| n >= 2).count();
        assert!(prolific >= 5, "{prolific} authors with two books or more");

        // Every genre is used, some books are sold out, and initial stock is small.
        for genre in Genre::ALL {
            assert!(catalog.iter().any(|b| b.genre == genre), "no {genre} book");
            // Display and the wire name are one spelling.
            assert_eq!(serde_json::to_value(genre).unwrap(), serde_json::json!(genre.as_str()));
        }
        assert!(catalog.iter().filter(|b| !b.in_stock()).count() >= 2);
        assert!(catalog.iter().all(|b| b.stock <= 30));
    }

    #[test]
    fn the_course_page_titles_resolve() {
        let catalog = default_catalog().unwrap();
        for title in [
            "Learning Python",
            "JavaScript - The Good Parts",
            "Domain-Driven Design: Tackling Complexity in the Heart of Software",
            "Design Patterns: Elements of Reusable Object-Oriented Software",
        ] {
            let book = find_by_title(&catalog, title).unwrap();
            assert_eq!(book.genre, Genre::Computing);
        }
    }

    #[test]
    fn books_have_the_wire_form() {
        let dune = Book {
            book_id: "dune".into(),
            title: "Dune".into(),
            author: "Frank Herbert".into(),
            genre: Genre::ScienceFiction,
            year: 1965,
            price_cents: 1399,
            stock: 25,
        };
        let json = serde_json::json!({
            "bookId": "dune", "title": "Dune", "author": "Frank Herbert", "genre": "science fiction",
            "year": 1965, "price": 13.99, "stock": 25
        });
        assert_eq!(serde_json::to_value(&dune).unwrap(), json);
        assert_eq!(serde_json::from_value::<Book>(json).unwrap(), dune);
        assert!(serde_json::to_string(&book("a", "A", "B", 1000)).unwrap().contains(r#""price":10.0"#));
        let suggested = SuggestedBook::from(&dune);
        assert_eq!((suggested.book_id.as_str(), suggested.title.as_str()), ("dune", "Dune"));
    }

    #[test]
    fn prices_parse_exactly_to_cents() {
        let cents = |price: &str| {
            let json = format!(
                r#"[{{"bookId":"x","title":"X","author":"Y","genre":"poetry","year":2000,"price":{price},"stock":1}}]"#
            );
            parse_catalog(&json).map(|books| books[0].price_cents)
        };
        assert_eq!(cents("12.99"), Ok(1299));
        assert_eq!(cents("0.29"), Ok(29));
        assert_eq!(cents("8"), Ok(800));
        assert_eq!(cents("1000.00"), Ok(MAX_PRICE_CENTS));
        for bad in ["-1.50", "12.999", "\"12.99\""] {
            match cents(bad) {
                Err(CatalogError::Parse(message)) => assert!(message.starts_with("[0].price"), "{message}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(cents("0"), Err(CatalogError::BadPrice { cents: 0, .. })));
        assert!(matches!(cents("1000.01"), Err(CatalogError::BadPrice { cents: 100_001, .. })));
    }

    #[test]
    fn validation_catches_each_bad_case() {
        let good = || vec![book("a", "Alpha", "Ann", 100), book("b", "Beta", "Bob", 200)];
        assert_eq!(validate(&good()), Ok(()));

        let mut books = good();
        books[1].book_id = "a".into();
        assert_eq!(validate(&books), Err(CatalogError::DuplicateId("a".into())));

        let mut books = good();
        books[1].title = "  ALPHA ".into();
        assert_eq!(validate(&books), Err(CatalogError::DuplicateTitle("  ALPHA ".into())));

        let mut books = good();
        books[0].title = " ".into();
        assert_eq!(validate(&books), Err(CatalogError::EmptyField { book_id: "a".into(), field: "title" }));

        let mut books = good();
        books[1].author = String::new();
        assert_eq!(validate(&books), Err(CatalogError::EmptyField { book_id: "b".into(), field: "author" }));

        for cents in [0, MAX_PRICE_CENTS + 1] {
            let mut books = good();
            books[0].price_cents = cents;
            assert_eq!(validate(&books), Err(CatalogError::BadPrice { book_id: "a".into(), cents }));
        }

        for id in ["", "Dune", "book/1", "two words", &"x".repeat(MAX_ID_LEN + 1)] {
            let mut books = good();
            books[0].book_id = id.to_string();
            assert_eq!(validate(&books), Err(CatalogError::BadId(id.to_string())));
        }
    }

    #[test]
    fn bad_json_is_a_parse_error_naming_the_place() {
        assert!(matches!(parse_catalog("not json"), Err(CatalogError::Parse(_))));
        let unknown_genre =
            r#"[{"bookId":"x","title":"X","author":"Y","genre":"romance","year":2000,"price":1,"stock":1}]"#;
        match parse_catalog(unknown_genre) {
            Err(CatalogError::Parse(message)) => assert!(message.starts_with("[0].genre"), "{message}"),
            other => panic!("{other:?}"),
        }
        let negative_stock =
            r#"[{"bookId":"x","title":"X","author":"Y","genre":"poetry","year":2000,"price":1,"stock":-1}]"#;
        assert!(matches!(parse_catalog(negative_stock), Err(CatalogError::Parse(_))));
    }

    #[test]
    fn lines_resolve_by_id_or_by_title() {
        let catalog = default_catalog().unwrap();
        assert_eq!(find_by_id(&catalog, "emma").unwrap().title, "Emma");
        assert_eq!(find_by_id(&catalog, "nope"), None);

        assert_eq!(resolve(&catalog, Some("dune"), None).unwrap().book_id, "dune");
        assert_eq!(resolve(&catalog, None, Some("  the HOBBIT ")).unwrap().book_id, "the-hobbit");
        assert_eq!(
            resolve(&catalog, None, Some("javascript -  the good parts")).unwrap().book_id,
            "javascript-the-good-parts"
        );
        // The id wins over the title, and a blank id counts as absent.
        assert_eq!(resolve(&catalog, Some("emma"), Some("Dune")).unwrap().book_id, "emma");
        assert_eq!(resolve(&catalog, Some(" "), Some("Dune")).unwrap().book_id, "dune");
        assert_eq!(resolve(&catalog, Some("gone"), Some("Dune")), Err(ResolveError::UnknownId("gone".into())));
        assert_eq!(resolve(&catalog, None, Some("Dune 2")), Err(ResolveError::UnknownTitle("Dune 2".into())));
        assert_eq!(resolve(&catalog, None, Some("")), Err(ResolveError::Unnamed));

        let item = Item { name: Some("Learning Python".into()), quantity: Some(1), book_id: None };
        assert_eq!(resolve_item(&catalog, &item).unwrap().book_id, "learning-python");
    }

    #[test]
    fn book_keys_share_one_prefix() {
        assert_eq!(book_key("dune"), "book/dune");
        assert!(book_key("emma").starts_with(BOOK_PREFIX));
        assert_eq!(book_id_from_key("book/dune"), Some("dune"));
        assert_eq!(book_id_from_key("order/1"), None);
        assert_eq!(book_id_from_key("book/"), None);
    }
}
