"""Who a sign-in is: the provider's account (issuer and subject) names one person for good."""

from __future__ import annotations

import pytest

from app import services


def test_an_account_keeps_its_name_and_another_account_cannot_take_it(ctx) -> None:  # noqa: ANN001
    first = services.sign_in(name="alice@example.com", issuer="idp-a", subject="1", ctx=ctx)
    assert first.role == "admin"  # the first person of the instance
    # the same account again (its e-mail changed): the same person, the same role
    again = services.sign_in(name="alice@new.example", issuer="idp-a", subject="1", ctx=ctx)
    assert again.user_id == first.user_id and again.role == "admin"
    # another account (another provider) presenting alice's e-mail is refused
    with pytest.raises(services.Forbidden, match="belongs to another account"):
        services.sign_in(name="alice@example.com", issuer="idp-b", subject="1", ctx=ctx)
    # a person first named on the CLI (--as) is tied to the account of their first sign-in
    cli = services.sign_in(name="bob@example.com", ctx=ctx)
    tied = services.sign_in(name="bob@example.com", issuer="idp-a", subject="2", ctx=ctx)
    assert tied.user_id == cli.user_id and tied.role == "editor"
    with pytest.raises(services.Forbidden):
        services.sign_in(name="bob@example.com", issuer="idp-a", subject="3", ctx=ctx)
