;; `twice` calls ic0.msg_reply twice: the second call is a contract violation (IC0504,
;; "ic0.msg_reply: the call is already replied") and the whole execution, first reply included,
;; is discarded.
(module
  (import "ic0" "msg_reply" (func $msg_reply))
  (func $twice
    (call $msg_reply)
    (call $msg_reply))
  (export "canister_update twice" (func $twice)))
