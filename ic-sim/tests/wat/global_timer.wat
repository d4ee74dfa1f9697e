;; A raw global-timer canister (no CDK), speaking raw little-endian bytes instead of candid:
;;   update `set` (arg: u64 deadline, 8 bytes LE) -> previous deadline from ic0.global_timer_set
;;   query  `fired`       -> u64: how often canister_global_timer ran
;;   query  `caller_size` -> i32: ic0.msg_caller_size seen by the last timer (-1: none yet;
;;                           0: the management canister, aaaaa-aa, whose id is empty)
;; The timer handler also debug_prints "global timer fired".
(module
  (import "ic0" "msg_arg_data_copy" (func $msg_arg_data_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $msg_reply_data_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $msg_reply))
  (import "ic0" "msg_caller_size" (func $msg_caller_size (result i32)))
  (import "ic0" "global_timer_set" (func $global_timer_set (param i64) (result i64)))
  (import "ic0" "debug_print" (func $debug_print (param i32 i32)))
  (memory 1)
  (data (i32.const 64) "global timer fired")
  (global $fired (mut i64) (i64.const 0))
  (global $caller_size (mut i32) (i32.const -1))

  (func $reply_i64 (param $v i64)
    (i64.store (i32.const 16) (local.get $v))
    (call $msg_reply_data_append (i32.const 16) (i32.const 8))
    (call $msg_reply))

  (func $set
    (call $msg_arg_data_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (call $reply_i64 (call $global_timer_set (i64.load (i32.const 0)))))

  (func $fired
    (call $reply_i64 (global.get $fired)))

  (func $caller_size
    (i32.store (i32.const 16) (global.get $caller_size))
    (call $msg_reply_data_append (i32.const 16) (i32.const 4))
    (call $msg_reply))

  (func $timer
    (global.set $fired (i64.add (global.get $fired) (i64.const 1)))
    (global.set $caller_size (call $msg_caller_size))
    (call $debug_print (i32.const 64) (i32.const 18)))

  (export "canister_update set" (func $set))
  (export "canister_query fired" (func $fired))
  (export "canister_query caller_size" (func $caller_size))
  (export "canister_global_timer" (func $timer)))
