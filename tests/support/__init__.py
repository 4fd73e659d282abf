"""Stand-ins for what tests cannot reach (remote LLM providers), named for what they are."""
