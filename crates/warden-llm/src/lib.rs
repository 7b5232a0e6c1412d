//! warden's LLM reasoner.
//!
//! An investigation can reason with a language model behind any
//! OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama, llama.cpp,
//! LiteLLM) instead of the built-in reasoner. This crate holds:
//!
//! - [`client`]: a lenient chat-completions client of its own, with
//!   per-request timeouts and retries that honour `Retry-After` and the
//!   deadline;
//! - [`reasoner`]: [`LlmReasoner`], the Reasoner port as chat rounds, with
//!   the queries the loop may run offered as tools ([`tools`]) and the
//!   engines' summaries, never raw logs, as delimited data ([`prompt`]);
//! - [`budget`]: token estimates, the price table, and the per-investigation
//!   token and cost budget that stops the loop;
//! - [`answer`]: lenient reading of the model's structured answers;
//! - `testing` (feature `testing`): a scripted OpenAI-compatible server.
//!
//! See `docs/llm.md`.

pub mod answer;
pub mod budget;
pub mod client;
pub mod prompt;
pub mod reasoner;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;

pub use budget::{Budget, Price, estimate_tokens};
pub use client::{ChatClient, LlmError, RetryPolicy};
pub use reasoner::{Briefing, LlmReasoner, SetupError, SurveyBrief};
