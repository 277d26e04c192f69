//! What the stack repairs as it starts, after a crash of the AWS emulator.
//!
//! MiniStack saves its state only when it stops cleanly; a crash (SIGKILL, power loss) takes it
//! back to its last clean stop, while the books database keeps every acknowledged write. An
//! order approved since then is gone from the orders table, and if an executor had prepared it,
//! its copies stay reserved in the books database with no order to commit or abort them. Such
//! reservations are aborted here, before any executor or shopper can run, so the copies go back
//! on sale. (A committed reservation whose order was lost stays: its copies were sold.)

use anyhow::Result;
use books_db_client::BooksDb;
use bookstore_aws::{BooksDbStock, DynamoOrders};

/// Aborts every prepared reservation whose order the orders table does not know; answers their
/// order ids.
pub async fn release_orphaned_reservations(books_db: BooksDb, orders: &DynamoOrders) -> Result<Vec<String>> {
    let stock = BooksDbStock::new(books_db);
    let mut released = Vec::new();
    for order_id in stock.prepared_orders().await? {
        if orders.get(&order_id).await?.is_none() {
            stock.release(&order_id).await?;
            released.push(order_id);
        }
    }
    Ok(released)
}
