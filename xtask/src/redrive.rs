//! `cargo xtask redrive`: moves the messages of the order queue's dead-letter queue back to the
//! order queue, so the executors try them again (an order left `executing` with its decision is
//! then finished). Against the running embedded default, or any SQS endpoint.

use anyhow::{Context, Result};

use crate::emulator::emulator_clients;

#[derive(clap::Args)]
pub struct Redrive {
    /// The AWS emulator the embedded default runs (`cargo xtask up --aws-port`).
    #[arg(long, env = "BOOKSTORE_AWS_PORT", default_value_t = 4566)]
    aws_port: u16,
}

pub fn run(options: Redrive) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (_, sqs) = emulator_clients(&format!("http://127.0.0.1:{}", options.aws_port));
        let url = |name: &'static str| {
            let sqs = sqs.clone();
            async move {
                let answer = sqs.get_queue_url().queue_name(name).send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "no queue {name} (is `cargo xtask up` running?): {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
                answer.queue_url().map(str::to_string).context("no queue URL")
            }
        };
        let moved = redrive(&sqs, &url("OrderDeadLetterQueue").await?, &url("OrderQueue").await?).await?;
        println!("moved {moved} message(s) from OrderDeadLetterQueue back to OrderQueue");
        Ok(())
    })
}

/// Moves every message that is in `from` to `to`; answers how many. All are taken first (held
/// invisible), then each is sent before it is deleted: a message that comes straight back to
/// `from` (the executor dead-letters it again) is not moved twice, and a failure half-way
/// duplicates a message at worst (the executors apply an order once). A message keeps its
/// attributes, so a redriven order goes on in its own trace, but not the reason it was
/// dead-lettered, which was about the delivery before.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> Result<usize> {
    let mut taken = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(HOLD_SECONDS)
            .send()
            .await
            .map_err(|e| sqs_error("receiving", e))?;
        if received.messages().is_empty() {
            break;
        }
        taken.extend(received.messages.unwrap_or_default());
    }
    for message in &taken {
        let mut attributes = message.message_attributes.clone().unwrap_or_default();
        attributes.remove(bookstore_aws::DEAD_LETTER_REASON);
        sqs.send_message()
            .queue_url(to)
            .message_body(message.body().unwrap_or_default())
            .set_message_attributes(Some(attributes).filter(|a| !a.is_empty()))
            .send()
            .await
            .map_err(|e| sqs_error("sending", e))?;
        sqs.delete_message()
            .queue_url(from)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(|e| sqs_error("deleting", e))?;
    }
    Ok(taken.len())
}

/// A failed SQS call, with the whole chain of its causes.
fn sqs_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    error: aws_sdk_sqs::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

/// How long the messages taken stay invisible while they are moved.
const HOLD_SECONDS: i32 = 300;
