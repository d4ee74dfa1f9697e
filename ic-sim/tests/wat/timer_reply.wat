;; The timer handler calls ic0.msg_reply, which the global-timer context does not allow:
;; the handler traps (IC0504, '"ic0_msg_reply" cannot be executed in global timer mode') and its
;; increment of `fired` is rolled back. Raw little-endian bytes, like global_timer.wat:
;;   update `set` (u64 deadline) -> previous deadline;  query `fired` -> u64
;; Its query `set_in_query` calls ic0.global_timer_set, which queries may not call either:
;; IC0504, '"ic0_global_timer_set" cannot be executed in non replicated query mode'.
(module
  (import "ic0" "msg_arg_data_copy" (func $msg_arg_data_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $msg_reply_data_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $msg_reply))
  (import "ic0" "global_timer_set" (func $global_timer_set (param i64) (result i64)))
  (memory 1)
  (global $fired (mut i64) (i64.const 0))

  (func $reply_i64 (param $v i64)
    (i64.store (i32.const 16) (local.get $v))
    (call $msg_reply_data_append (i32.const 16) (i32.const 8))
    (call $msg_reply))

  (func $set
    (call $msg_arg_data_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (call $reply_i64 (call $global_timer_set (i64.load (i32.const 0)))))

  (func $fired
    (call $reply_i64 (global.get $fired)))

  (func $set_in_query
    (call $reply_i64 (call $global_timer_set (i64.const 0))))

  (func $timer
    (global.set $fired (i64.add (global.get $fired) (i64.const 1)))
    (call $msg_reply))

  (export "canister_update set" (func $set))
  (export "canister_query fired" (func $fired))
  (export "canister_query set_in_query" (func $set_in_query))
  (export "canister_global_timer" (func $timer)))
