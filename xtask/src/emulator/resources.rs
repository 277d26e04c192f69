//! The template's tables and queues, created in the AWS emulator.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_sqs::types::QueueAttributeName;

use super::emulator_clients;
use crate::template::{Resolver, Template};

/// Creates the template's tables and queues in the emulator; fills in `resolver` with their
/// names, URLs and ARNs. Returns logical id → name or URL.
pub async fn create_resources(
    template: &Template,
    endpoint: &str,
    resolver: &mut Resolver,
) -> Result<BTreeMap<String, String>> {
    let (dynamodb, sqs) = emulator_clients(endpoint);
    let mut resources = BTreeMap::new();
    for table in template.tables()? {
        let mut create = dynamodb.create_table().table_name(&table.logical_id).billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in &table.keys {
            let kind = if kind == "RANGE" { KeyType::Range } else { KeyType::Hash };
            create = create.key_schema(KeySchemaElement::builder().attribute_name(name).key_type(kind).build()?);
        }
        for (name, kind) in &table.attributes {
            let kind = ScalarAttributeType::from(kind.as_str());
            create = create.attribute_definitions(
                AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build()?,
            );
        }
        match create.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => bail!("creating table {}: {}", table.logical_id, aws_sdk_dynamodb::error::DisplayErrorContext(e)),
        }
        resolver.refs.insert(table.logical_id.clone(), table.logical_id.clone());
        resources.insert(table.logical_id.clone(), table.logical_id);
    }
    // Queues that others redrive to come first, so their ARNs are known.
    let mut queues = template.queues();
    queues.sort_by_key(|q| q.properties.contains_key("RedrivePolicy"));
    for queue in queues {
        let mut create = sqs.create_queue().queue_name(&queue.logical_id);
        for (name, value) in &queue.properties {
            let value = match value {
                serde_json::Value::Object(policy) => {
                    let resolved: serde_json::Map<String, serde_json::Value> = policy
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), serde_json::Value::String(resolver.resolve(v)?))))
                        .collect::<Result<_>>()?;
                    serde_json::Value::Object(resolved).to_string()
                }
                other => resolver.resolve(other)?,
            };
            create = create.attributes(QueueAttributeName::from(name.as_str()), value);
        }
        let created = create.send().await.map_err(|e| {
            anyhow::anyhow!("creating queue {}: {}", queue.logical_id, aws_sdk_sqs::error::DisplayErrorContext(e))
        })?;
        let url = created.queue_url().context("no queue URL")?.to_string();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("reading queue {}: {}", queue.logical_id, aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).context("no queue ARN")?;
        resolver.refs.insert(queue.logical_id.clone(), url.clone());
        resolver.attributes.insert((queue.logical_id.clone(), "Arn".into()), arn.clone());
        resolver.attributes.insert((queue.logical_id.clone(), "QueueName".into()), queue.logical_id.clone());
        resources.insert(queue.logical_id, url);
    }
    Ok(resources)
}
