"""The prompts ad models see, one place for training and drafting: an adapter learns the
exact text it is later asked with.

    headline_prompt(description="Project boards for small teams", industry="internet")
    # "Write an ad headline.\\nProduct: Project boards for small teams\\n"
    # "Industry: internet\\nHeadline:"

Plain text, not a chat template: the ad base model is a base (not instruct) model, and the
completion (" " + the headline) is all the loss is computed on.
"""

from __future__ import annotations


def headline_prompt(*, description: str, industry: str = "") -> str:
    lines = ["Write an ad headline.", f"Product: {' '.join(description.split())}"]
    if industry.strip():
        lines.append(f"Industry: {industry.strip()}")
    lines.append("Headline:")
    return "\n".join(lines)
