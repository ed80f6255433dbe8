"""Single-account mode: four roles and two projects in one account never collide."""

from __future__ import annotations

import collections

NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::SageMaker::Domain": "DomainName",
    "AWS::SageMaker::UserProfile": "UserProfileName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
}


def test_every_account_is_the_same(single_account):
    stacks = single_account.templates
    assert len({single_account.stage_of[s] for s in stacks}) == 4
    assert "mlops-dev-fraud-build" in stacks and "mlops-staging-fraud-workspace" in stacks


def test_no_resource_name_collides(single_account):
    names = collections.Counter()
    for stack, template in single_account.templates.items():
        for resource in template["Resources"].values():
            prop = NAME_PROPERTIES.get(resource["Type"])
            if prop and isinstance(resource["Properties"].get(prop), str):
                # Profile names are unique per domain, and each stage has its own domain.
                scope = single_account.stage_of[stack] if resource["Type"] == "AWS::SageMaker::UserProfile" else ""
                names[(resource["Type"], scope, resource["Properties"][prop])] += 1
    assert names, "no explicit names found"
    assert [n for n, count in names.items() if count > 1] == []
    assert len(set(single_account.templates)) == len(single_account.templates)
    # the Studio domains of dev and staging share the account
    assert ("AWS::SageMaker::Domain", "", "mlops-dev") in names
    assert ("AWS::SageMaker::Domain", "", "mlops-staging") in names


def test_sso_profiles_carry_the_identity_center_user(single_account):
    profiles = [
        r
        for r in single_account.templates["mlops-dev-fraud-workspace"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::UserProfile"
    ]
    assert {p["Properties"]["SingleSignOnUserValue"] for p in profiles} == {"alice@example.com", "bob@example.com"}
    assert {p["Properties"]["SingleSignOnUserIdentifier"] for p in profiles} == {"UserName"}
    domain = next(
        r
        for r in single_account.templates["mlops-dev-studio"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Domain"
    )
    assert domain["Properties"]["AuthMode"] == "SSO"
