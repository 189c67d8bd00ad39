"""Prompt sets and reference image sets."""

from evalsuite.data.prompts import Prompt, PromptSet, load_demo_prompts, load_text_prompts

__all__ = ["Prompt", "PromptSet", "load_demo_prompts", "load_text_prompts"]
