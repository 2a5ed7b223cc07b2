#!/usr/bin/env python3
"""Translates template.yaml (AWS SAM) to plain CloudFormation JSON, offline.

    sam-translate.py [--template template.yaml] [--output build/template.translated.json]

`sam deploy` has CloudFormation run the AWS::Serverless transform in the cloud; this runs the
same translator (aws-sam-translator, pinned in scripts/install-validate-tools.sh) locally, so
cfn-lint and checkov can check the resources that will actually be created. Three things the
cloud path does differently are done here instead:

- Local paths: `sam package` uploads CodeUri (the workspace root) and DefinitionUri
  (statemachine/ferry.asl.json) to S3 before the transform runs. Here each CodeUri becomes a
  placeholder S3 location and the state machine definition is inlined from the file, so its
  DefinitionSubstitutions are checked against the real definition.
- Managed policy names: the translator resolves names such as `AmazonS3ReadOnlyAccess` by
  listing IAM policies, which needs credentials. Ferry's template uses policy templates and
  inline statements only (SAM's own managed policies are added by ARN), so the loader here
  refuses the lookup with a clear message instead of calling IAM.
- Parameters and region: the template's defaults are used, in --region (default us-east-1);
  the translator only uses the region to pick the ARN partition of what it generates.
"""

import argparse
import json
import os
import pathlib
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflineManagedPolicyLoader:
    """Stands in for samtranslator's IAM-backed ManagedPolicyLoader."""

    def load(self):
        raise SystemExit(
            "sam-translate: the template names an AWS managed policy by name; offline "
            "translation cannot look it up in IAM. Use its ARN (or a policy template)."
        )


def localize(template, template_dir):
    """Replaces local CodeUri/DefinitionUri values the way `sam package` would."""
    resources = template.get("Resources", {})
    globals_function = template.get("Globals", {}).get("Function", {})
    if isinstance(globals_function.get("CodeUri"), str):
        globals_function["CodeUri"] = "s3://ferry-offline-validation/code.zip"
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            code_uri = props.get("CodeUri")
            if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
                props["CodeUri"] = f"s3://ferry-offline-validation/{logical_id}.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                path = template_dir / uri
                if not path.is_file():
                    raise SystemExit(f"sam-translate: {logical_id}.DefinitionUri: {path} does not exist")
                props["Definition"] = json.loads(path.read_text())
                del props["DefinitionUri"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="template.yaml", type=pathlib.Path)
    parser.add_argument("--output", default="build/template.translated.json", type=pathlib.Path)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    # The translator asks a boto3 session for the region (no AWS call is made).
    os.environ["AWS_DEFAULT_REGION"] = args.region

    template = yaml_parse(args.template.read_text())
    localize(template, args.template.resolve().parent)
    try:
        # passthrough_metadata keeps each resource's Metadata (checkov's skip comments).
        translated = transform(template, {}, OfflineManagedPolicyLoader(), passthrough_metadata=True)
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"sam-translate: {cause.message}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(translated, indent=2, sort_keys=False) + "\n")
    count = len(translated.get("Resources", {}))
    print(f"sam-translate: {args.template} -> {args.output} ({count} CloudFormation resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
