;; `overflow` recurses without end (non-tail: a plain `call`, never `return_call`); the engine's
;; stack runs out long before the instruction limit: IC0502 "Canister trapped: stack overflow".
(module
  (import "ic0" "msg_reply" (func $msg_reply))
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func $overflow
    (drop (call $down (i64.const 0)))
    (call $msg_reply))
  (export "canister_update overflow" (func $overflow)))
