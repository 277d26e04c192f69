//! The idempotency table: one item per `Idempotency-Key` (`idempotencyKey`), holding the body's
//! fingerprint, its answer once there is one, and `expiresAt` (seconds since the epoch; the
//! table's TTL attribute): the claim's lease while its request runs, the key's lifetime after.

use aws_sdk_dynamodb::types::AttributeValue;
use bookstore_domain::idempotency::{
    CLAIM_LEASE, Claim, ClaimId, HeldKey, IdempotencyKey, IdempotencyStore, KEY_LIFETIME, StoredAnswer,
};
use bookstore_domain::service::Unavailable;
use serde::{Deserialize, Serialize};

use crate::table::{Written, conditional, from_item, get_consistent, to_item, to_value, update_item};

pub struct DynamoIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyItem {
    idempotency_key: String,
    /// The claim holding it (see [`ClaimId`]).
    claim_id: String,
    fingerprint: String,
    expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<StoredAnswer>,
}

impl DynamoIdempotency {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    fn key(key: &IdempotencyKey) -> (&'static str, AttributeValue) {
        ("idempotencyKey", AttributeValue::S(key.as_str().into()))
    }
}

impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, key: &IdempotencyKey, fingerprint: &str, now: u64) -> Result<Claim, Unavailable> {
        let claim = ClaimId(uuid::Uuid::new_v4().to_string());
        let item = KeyItem {
            idempotency_key: key.as_str().into(),
            claim_id: claim.0.clone(),
            fingerprint: fingerprint.into(),
            expires_at: now + CLAIM_LEASE.as_secs(),
            answer: None,
        };
        // Free, or expired: an answered key after its lifetime, a claim after its lease (the
        // table's TTL deletes expired items only eventually).
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item, "encoding the idempotency key")?))
            .condition_expression("attribute_not_exists(idempotencyKey) OR expiresAt < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        match conditional(put.send(), "claiming the idempotency key").await? {
            Written::Applied(_) => Ok(Claim::Won(claim)),
            Written::ConditionFailed => {
                let held = get_consistent(&self.client, &self.table, Self::key(key), "reading the idempotency key")
                    .await?
                    .map(|item| from_item::<KeyItem>(item, "decoding the idempotency key"))
                    .transpose()?;
                // Released between the two calls: as if still running; the client retries.
                let held = held.map_or(HeldKey { fingerprint: fingerprint.into(), answer: None }, |item| HeldKey {
                    fingerprint: item.fingerprint,
                    answer: item.answer,
                });
                Ok(Claim::Held(held))
            }
        }
    }

    async fn answer(
        &self,
        key: &IdempotencyKey,
        claim: &ClaimId,
        answer: &StoredAnswer,
        now: u64,
    ) -> Result<(), Unavailable> {
        let update = update_item(&self.client, &self.table, Self::key(key))
            .update_expression("SET answer = :answer, expiresAt = :expires")
            .condition_expression(HELD_BY_CLAIM)
            .expression_attribute_values(":claim", AttributeValue::S(claim.0.clone()))
            .expression_attribute_values(":answer", to_value(answer, "encoding the answer")?)
            .expression_attribute_values(":expires", AttributeValue::N((now + KEY_LIFETIME.as_secs()).to_string()));
        if conditional(update.send(), "storing the answer with its key").await? == Written::ConditionFailed {
            tracing::warn!(key = key.as_str(), "the key's claim was taken over; its answer is not stored");
        }
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey, claim: &ClaimId) -> Result<(), Unavailable> {
        let (name, value) = Self::key(key);
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(name, value)
            .condition_expression(HELD_BY_CLAIM)
            .expression_attribute_values(":claim", AttributeValue::S(claim.0.clone()));
        conditional(delete.send(), "releasing the idempotency key").await?;
        Ok(())
    }
}

/// Still held by the claim `:claim`, unanswered: only its own request answers or frees a key.
const HELD_BY_CLAIM: &str = "claimId = :claim AND attribute_not_exists(answer)";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::table::replay::{condition_failed, replay};

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse(b"key-1").unwrap()
    }

    #[tokio::test]
    async fn a_claim_is_one_conditional_put_and_a_held_key_is_read_consistently() {
        let held = json!({"Item": {
            "idempotencyKey": {"S": "key-1"}, "claimId": {"S": "c"}, "fingerprint": {"S": "ab"},
            "expiresAt": {"N": "1060"}, "answer": {"M": {"status": {"N": "200"}, "body": {"S": "{}"}}}
        }});
        let table = replay(vec![(200, json!({})), condition_failed(), (200, held)]);
        let store = DynamoIdempotency::new(table.client.clone(), "keys".into());
        let Claim::Won(claim) = store.claim(&key(), "ab", 1000).await.unwrap() else { panic!("a free key") };
        let answer = StoredAnswer { status: 200, body: "{}".into() };
        assert_eq!(
            store.claim(&key(), "ab", 1001).await.unwrap(),
            Claim::Held(HeldKey { fingerprint: "ab".into(), answer: Some(answer) })
        );
        let calls = table.calls();
        assert_eq!(calls[0].0, "PutItem");
        assert_eq!(
            calls[0].1["Item"],
            json!({
                "idempotencyKey": {"S": "key-1"}, "claimId": {"S": claim.0}, "fingerprint": {"S": "ab"},
                "expiresAt": {"N": "1060"}
            })
        );
        assert_eq!(calls[0].1["ConditionExpression"], "attribute_not_exists(idempotencyKey) OR expiresAt < :now");
        assert_eq!(calls[0].1["ExpressionAttributeValues"], json!({":now": {"N": "1000"}}));
        assert_eq!((calls[2].0.as_str(), &calls[2].1["ConsistentRead"]), ("GetItem", &json!(true)));
    }

    #[tokio::test]
    async fn only_the_claims_own_request_answers_or_releases_the_key() {
        let table = replay(vec![(200, json!({})), condition_failed(), (200, json!({}))]);
        let store = DynamoIdempotency::new(table.client.clone(), "keys".into());
        let claim = ClaimId("c-1".into());
        let answer = StoredAnswer { status: 200, body: "{}".into() };
        store.answer(&key(), &claim, &answer, 1000).await.unwrap();
        // A claim taken over: not an error, nothing written.
        store.answer(&key(), &claim, &answer, 1000).await.unwrap();
        store.release(&key(), &claim).await.unwrap();
        let calls = table.calls();
        assert_eq!(
            calls[0].1["ExpressionAttributeValues"][":expires"],
            json!({"N": (1000 + KEY_LIFETIME.as_secs()).to_string()})
        );
        assert_eq!(calls[0].1["ExpressionAttributeValues"][":answer"]["M"]["status"], json!({"N": "200"}));
        assert_eq!(calls[0].1["ConditionExpression"], HELD_BY_CLAIM);
        assert_eq!(calls[0].1["ExpressionAttributeValues"][":claim"], json!({"S": "c-1"}));
        assert_eq!((calls[2].0.as_str(), &calls[2].1["ConditionExpression"]), ("DeleteItem", &json!(HELD_BY_CLAIM)));
    }
}
