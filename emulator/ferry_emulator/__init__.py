"""Ferry's local AWS emulator. TEST INFRASTRUCTURE ONLY: never a model of production behaviour.

moto's server (pinned in ``emulator/requirements.txt``) answers every AWS service moto knows;
this package wraps it in a WSGI middleware (:mod:`ferry_emulator.app`) that adds what moto lacks
and Ferry needs:

* FSx for Lustre data repository tasks (:mod:`ferry_emulator.fsx`) and a minimal version of
  data repository associations;
* DataSync task executions with AWS's statuses, queueing, counters and tags
  (:mod:`ferry_emulator.datasync`), and the EventBridge event of each status change
  (:mod:`ferry_emulator.events`, read through the control API);
* Step Functions task tokens for the callback pattern: SendTaskSuccess, SendTaskFailure and
  SendTaskHeartbeat against the tokens the local runner issues
  (:mod:`ferry_emulator.task_tokens`);
* AWS's hard size limits where moto lacks them or counts them otherwise: DynamoDB items and
  transactions (:mod:`ferry_emulator.dynamodb`), SNS and SQS messages and StartExecution's input
  (:mod:`ferry_emulator.limits`);
* a clock the tests control (:mod:`ferry_emulator.clock`);
* fault injection: throttling, forced errors and conflicts, failed files, held tasks
  (:mod:`ferry_emulator.faults`, :mod:`ferry_emulator.control`).

Behaviours are cited to the AWS API references and user guides in each module; what is
simplified or assumed is said there and in ``emulator/README.md``.
"""

__version__ = "0.1.0"
