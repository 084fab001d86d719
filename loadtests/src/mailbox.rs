//! Codes read back from where the provider put them: the fake SES/SNS in this process.

use crate::flaw::Flaw;
use gatehouse_fake_aws::FakeAws;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a code may take to arrive before the scenario gives up on it.
const CODE_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Mailbox {
    pub fake: Arc<FakeAws>,
}

impl Mailbox {
    /// How many messages `to` has had so far: the code of a sign-in is the one after.
    pub fn mark(&self, to: &str) -> usize {
        self.fake.accepted_count_to(to)
    }

    /// The code in the first message to `to` after `mark`, waiting for it.
    pub async fn code_after(&self, to: &str, mark: usize) -> Result<String, Flaw> {
        let started = Instant::now();
        loop {
            if let Some(m) = self.fake.accepted_nth_to(to, mark) {
                return code_in(&m.text)
                    .ok_or_else(|| Flaw(format!("no code in the message to {to}")));
            }
            if started.elapsed() > CODE_WAIT {
                return Err(Flaw(format!("no code reached {to} in {CODE_WAIT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The first run of exactly six digits in a message.
pub fn code_in(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::code_in;

    #[test]
    fn the_code_is_the_run_of_six_digits() {
        assert_eq!(
            code_in("Your Gatehouse code is 048213. It expires in 5 minutes.").as_deref(),
            Some("048213")
        );
        assert_eq!(
            code_in("Call 2025550100 or use 123456").as_deref(),
            Some("123456")
        );
        assert_eq!(code_in("no code here 12345"), None);
    }
}
