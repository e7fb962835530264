"""The call stack of a run, built around its provider in two steps: `CallStack.open` makes everything that can be
refused (a key, a price, a store, the judge's model, the relabeller's embedder) before the output dir exists;
`start` adds what writes into it (the caller, its ledger, the reviews that call models)."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from synthkit.calls.caller import Caller
from synthkit.calls.cost import price_of
from synthkit.calls.providers import Provider, make_provider
from synthkit.calls.stores import Stores, StoreSettings, open_stores
from synthkit.core.errors import UserError
from synthkit.core.ledger import Ledger
from synthkit.core.secrets import protect
from synthkit.quality.llm_judge import JudgePlan, plan_judge


@dataclass
class CallStack:
    provider: Provider
    llm: object  # the run's LLMConfig, as a plain object: the call path reads it on every request
    stores: Stores
    priced: bool
    judge_plan: Optional[JudgePlan] = None  # judge=true (or a task's own judge switch)
    relabeler: object = None  # relabel=true: synthkit.quality.relabel.Relabeler
    models: dict = field(default_factory=dict)  # a step's own model (its `llm:`): key -> (LLMConfig, provider, price)
    caller: Optional[Caller] = None  # once started
    callers: dict = field(default_factory=dict)  # the steps' own models' callers, by key, once started
    judge: object = None  # its review of rows, once started
    relabel: object = None

    @classmethod
    def open(cls, cfg: DictConfig, specs: list, budget_file: Path) -> "CallStack":
        """Everything a run calls models through, or the one line saying why it cannot be."""
        protect(cfg.llm.api_key_env or "")
        price = _price(cfg)
        relabeler = None
        if cfg.relabel:  # embedder and corpus embeddings ready (or refused) before the output dir is made
            from synthkit.quality.relabel import make_relabeler

            relabeler = make_relabeler(cfg.embedder, specs, cfg.judge.max_tokens)
        llm = OmegaConf.to_object(cfg.llm)
        provider = make_provider(llm)
        judge = plan_judge(cfg.judge, cfg.max_cost_usd, specs) if not provider.placeholder else None
        use_cache = cfg.cache and not provider.placeholder  # placeholder rows are not worth keeping
        models = _step_models(cfg, specs) if not provider.placeholder else {}
        stores = open_stores(StoreSettings.of(cfg, budget_file), llm, price, use_cache)
        return cls(provider, llm, stores, price is not None, judge, relabeler, models)

    def start(self, ledger: Ledger, journal: Path, max_attempts: int, progress_every_s: float) -> None:
        """The caller (online, or batch with its journal) and the reviews that call models through it."""
        if self.llm.batch:
            from synthkit.calls.batch.caller import BatchCaller
            from synthkit.calls.providers import check_key, structured_output

            self.caller = BatchCaller(
                self.llm, check_key(self.llm), structured_output(self.llm), self.stores, ledger, journal, max_attempts,
                progress_every_s,
            )  # fmt: skip
        else:
            from synthkit.calls.online import ModelCaller

            self.caller = ModelCaller(self.provider, self.llm, self.stores, ledger)
        from synthkit.calls.online import ModelCaller

        for key, (llm, provider, price) in self.models.items():
            self.callers[key] = ModelCaller(provider, llm, self.stores.for_model(llm, price), ledger)
        if self.judge_plan is not None:
            self.judge = self.judge_plan.review(self.caller, self.stores, ledger)
        if self.relabeler is not None and not self.provider.placeholder:
            self.relabel = self.relabeler.review(self.caller)

    def caller_of(self, step) -> Caller:
        """The caller of a step: its own model's, or the run's."""
        return self.callers.get(_model_key(step.llm), self.caller) if step.llm else self.caller

    def close(self) -> None:
        """Close what can be closed outside the event loop (the run never started)."""
        self.stores.close()

    async def aclose(self) -> None:
        await self.provider.aclose()
        for _, provider, _ in self.models.values():
            await provider.aclose()
        if self.caller is not None:
            await self.caller.aclose()
        if self.judge_plan is not None:
            await self.judge_plan.aclose()
        await self.stores.aclose()


def _step_models(cfg: DictConfig, specs: list) -> dict:
    """The models steps ask instead of the run's (`llm:` in a step: what it changes of the run's llm), each checked
    as the run's is: its key, its price under a cap. One line for what cannot work, before the output dir."""
    models = {}
    for step in (step for spec in specs for step in spec.steps if step.llm):
        key = _model_key(step.llm)
        if key in models:
            continue
        if cfg.llm.batch:
            raise UserError(
                f"{step.where} asks another model (llm: {step.llm}), and llm.batch=true sends one model's batches: "
                "run online, or give the step the run's model"
            )
        try:
            llm = OmegaConf.to_object(OmegaConf.merge(cfg.llm, step.llm))
        except Exception as e:  # an unknown key or a value of the wrong type
            raise UserError(f"{step.where}: llm {step.llm} is not an llm config ({str(e).splitlines()[0]})") from None
        protect(llm.api_key_env or "")
        price = price_of(llm)
        if cfg.max_cost_usd is not None and price is None:
            raise UserError(
                f"max_cost_usd needs a price, and litellm has none for {step.where}'s {llm.model}: set "
                "input_cost_per_mtok and output_cost_per_mtok in its llm"
            )
        models[key] = (llm, make_provider(llm), price)
    return models


def _model_key(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True, default=str)


def _price(cfg: DictConfig):
    """The run's price per token (the batch price with llm.batch=true), or None; a cap needs one."""
    price = price_of(cfg.llm)
    if cfg.llm.batch:  # batch tokens are priced (and budgeted) at the batch price
        from synthkit.calls.batch.price import batch_price_of, check_batch

        check_batch(cfg.llm)
        price, why = batch_price_of(cfg.llm)
        if cfg.max_cost_usd is not None and price is None:
            raise UserError(f"max_cost_usd needs a batch price: {why}")
    if cfg.max_cost_usd is not None and price is None:
        raise UserError(
            f"max_cost_usd needs a price, and litellm has none for {cfg.llm.model}: "
            "set llm.input_cost_per_mtok and llm.output_cost_per_mtok"
        )
    return price
