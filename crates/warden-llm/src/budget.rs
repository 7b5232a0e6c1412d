//! Token estimates, prices, and the per-investigation budget.
//!
//! Tokens are estimated as `ceil(bytes / 4)` of the UTF-8 text: about what
//! BPE tokenizers of the GPT family average on English and JSON, and no
//! tokenizer has to ship with the agent. The estimate is used before every
//! call (to check the budget) and wherever a server reports no `usage`;
//! reported counts win when present.
//!
//! Before each call the budget checks two limits: the input tokens the
//! investigation may still send (`max_input_tokens`) and the plan's cost
//! budget (`cost_budget_usd`, 0 meaning no cost limit, as for the loop),
//! assuming the call's full `max_tokens` of output. A call that would cross
//! either is not made.

use warden_core::{LlmCall, ModelPrice};

/// `ceil(bytes / 4)`; see the module docs.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

impl Price {
    pub fn of(p: &ModelPrice) -> Self {
        Price {
            input_usd_per_mtok: p.input_usd_per_mtok,
            output_usd_per_mtok: p.output_usd_per_mtok,
        }
    }

    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_usd_per_mtok
            + output_tokens as f64 * self.output_usd_per_mtok)
            / 1_000_000.0
    }
}

/// What the investigation may still spend, and what it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub model: String,
    pub price: Price,
    pub max_input_tokens: u64,
    /// 0 = no cost limit.
    pub cost_budget_usd: f64,
    calls: Vec<LlmCall>,
}

impl Budget {
    pub fn new(model: &str, price: Price, max_input_tokens: u64, cost_budget_usd: f64) -> Self {
        Budget {
            model: model.to_string(),
            price,
            max_input_tokens,
            cost_budget_usd,
            calls: Vec::new(),
        }
    }

    pub fn input_tokens(&self) -> u64 {
        self.calls.iter().map(|c| c.input_tokens).sum()
    }

    pub fn cost_usd(&self) -> f64 {
        self.calls.iter().map(|c| c.cost_usd).sum()
    }

    /// Why a call of `input_tokens` (estimated) and up to `max_output`
    /// tokens may not be made, if it may not.
    pub fn refusal(&self, input_tokens: u64, max_output: u32) -> Option<String> {
        let spent = self.input_tokens();
        if spent + input_tokens > self.max_input_tokens {
            return Some(format!(
                "the next call needs ~{input_tokens} input tokens; {spent} of {} are spent",
                self.max_input_tokens
            ));
        }
        if self.cost_budget_usd > 0.0 {
            let spent = self.cost_usd();
            let next = self.price.cost(input_tokens, u64::from(max_output));
            if spent + next > self.cost_budget_usd {
                return Some(format!(
                    "the next call may cost ${next:.4}; ${spent:.4} of ${:.2} are spent",
                    self.cost_budget_usd
                ));
            }
        }
        None
    }

    /// Records one call (or one refused call) in the ledger.
    pub fn record(
        &mut self,
        input_tokens: u64,
        output_tokens: u64,
        latency_ms: u64,
        outcome: &str,
    ) {
        self.calls.push(LlmCall {
            model: self.model.clone(),
            input_tokens,
            output_tokens,
            latency_ms,
            cost_usd: self.price.cost(input_tokens, output_tokens),
            outcome: outcome.to_string(),
        });
    }

    pub fn calls(&self) -> &[LlmCall] {
        &self.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_rounds_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(8), 2);
        assert_eq!(estimate_tokens(9), 3);
    }

    #[test]
    fn the_token_cap_and_the_cost_budget_each_refuse() {
        let price = Price {
            input_usd_per_mtok: 1.0,
            output_usd_per_mtok: 2.0,
        };
        let mut b = Budget::new("m", price, 1000, 0.0);
        assert!(b.refusal(900, 100).is_none());
        b.record(900, 10, 5, "ok");
        let why = b.refusal(200, 100).unwrap();
        assert!(why.contains("900 of 1000"), "{why}");

        let mut b = Budget::new("m", price, 1_000_000, 0.01);
        b.record(5000, 0, 1, "ok");
        // 5000 in spent ($0.005); 4000 in + 1000 out would be $0.006.
        assert!(b.refusal(4000, 1000).unwrap().contains("$0.0050"));
        assert!(b.refusal(1000, 1000).is_none());
    }
}
