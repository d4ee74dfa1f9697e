;; Callbacks and cleanups that trap, for the call-context rules (tests/call_contexts.rs).
;; `go` (arg: the callee's principal bytes, raw) calls the callee's `pong`; its reply callback
;; adds 1 to `seen` and traps with 'callback trap'; its cleanup adds 10 to `cleaned` and then,
;; when `cleanup_traps` is set, traps with 'cleanup trap'. `pong` replies with nothing.
;; Raw little-endian bytes: query `cleaned` -> u64; update `arm` (u64: 1 = cleanup traps).
(module
  (import "ic0" "msg_arg_data_size" (func $msg_arg_data_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $msg_arg_data_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $msg_reply_data_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $msg_reply))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "call_new"
    (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_on_cleanup" (func $call_on_cleanup (param i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 1) $on_reply $on_cleanup)
  (data (i32.const 100) "pong")
  (data (i32.const 200) "callback trap")
  (data (i32.const 300) "cleanup trap")
  (global $cleaned (mut i64) (i64.const 0))
  (global $cleanup_traps (mut i32) (i32.const 0))

  (func $reply_i64 (param $v i64)
    (i64.store (i32.const 16) (local.get $v))
    (call $msg_reply_data_append (i32.const 16) (i32.const 8))
    (call $msg_reply))

  (func $go
    (local $len i32)
    (local.set $len (call $msg_arg_data_size))
    (call $msg_arg_data_copy (i32.const 1000) (i32.const 0) (local.get $len))
    (call $call_new (i32.const 1000) (local.get $len) (i32.const 100) (i32.const 4)
      (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0))
    (call $call_on_cleanup (i32.const 2) (i32.const 0))
    (drop (call $call_perform)))

  (func $on_reply (param $env i32)
    (call $trap (i32.const 200) (i32.const 13)))

  (func $on_cleanup (param $env i32)
    (global.set $cleaned (i64.add (global.get $cleaned) (i64.const 10)))
    (if (global.get $cleanup_traps)
      (then (call $trap (i32.const 300) (i32.const 12)))))

  (func $pong (call $msg_reply))

  (func $arm
    (call $msg_arg_data_copy (i32.const 0) (i32.const 0) (i32.const 8))
    (global.set $cleanup_traps (i32.wrap_i64 (i64.load (i32.const 0))))
    (call $msg_reply))

  (func $cleaned_q (call $reply_i64 (global.get $cleaned)))

  (export "canister_update go" (func $go))
  (export "canister_update pong" (func $pong))
  (export "canister_update arm" (func $arm))
  (export "canister_query cleaned" (func $cleaned_q)))
