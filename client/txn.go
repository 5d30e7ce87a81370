package client

import (
	"context"
	"errors"
	"fmt"

	"lite-raft/api"
)

// ReadDir reads folder dir ("" for the top) in one linearizable read: its keys with
// their values, its subfolders' names and its counters, all as of one applied index
// (api.DirEntries). An answer other than 0 is an *AnswerError: 8 (CodeNoDir) when
// nothing is under dir, 1 when the folder is too large for one answer; a request without
// an answer is an *Error (ExitCodeOf gives the exit code of both).
func (cl *Client) ReadDir(ctx context.Context, dir string) (api.DirEntries, error) {
	req := api.Request{Op: api.OpListValues, Key: dir}
	if err := req.Validate(); err != nil {
		return api.DirEntries{}, &AnswerError{Op: req.Op, Resp: api.Response{Code: api.CodeUsage, Msg: err.Error()}}
	}
	resp, err := cl.Do(ctx, req)
	if err != nil {
		return api.DirEntries{}, err
	}
	return DirEntriesOf(resp)
}

// DirEntriesOf reads list --values' answer: an *AnswerError for a code other than 0.
func DirEntriesOf(resp api.Response) (api.DirEntries, error) {
	if resp.Code != api.CodeOK {
		return api.DirEntries{}, &AnswerError{Op: api.OpListValues, Resp: resp}
	}
	d, err := api.DecodeDirEntries(resp.JSON)
	if err != nil {
		return api.DirEntries{}, fmt.Errorf("list --values: %w", err)
	}
	return d, nil
}

// Txn applies a transaction: every action if every condition holds, else none. Done:
// a nil error and the raised counters' new values (TxnResult.Raised, in the order of
// the raise actions). A false condition: TxnResult.Failed names it (from 1) and the
// error is an *AnswerError of code 6 (CodeCondFalse; IsCondFalse). Any other answer is
// an *AnswerError (10 for a transaction refused as malformed, before it is sent; 14 for a
// cluster with a member older than command version 5), and a request without an answer
// an *Error whose Outcome says whether it may have been applied (exit 2). The request
// keeps its client ID and sequence number across Do's retries, so it applies once.
func (cl *Client) Txn(ctx context.Context, t api.Txn) (api.TxnResult, error) {
	req := api.Request{Op: api.OpTxn, Txn: t}
	if err := req.Validate(); err != nil {
		return api.TxnResult{}, &AnswerError{Op: req.Op, Resp: api.Response{Code: api.CodeUsage, Msg: err.Error()}}
	}
	resp, err := cl.Do(ctx, req)
	if err != nil {
		return api.TxnResult{}, err
	}
	return TxnResultOf(resp)
}

// TxnResultOf reads txn's answer: the result, with an *AnswerError for a code other
// than 0 (the result names the false condition with code 6).
func TxnResultOf(resp api.Response) (api.TxnResult, error) {
	res, err := api.DecodeTxnResult(resp.Value)
	if err != nil && resp.Code == api.CodeOK {
		// applied, but the answer is unreadable: say so, the raised values are lost
		return api.TxnResult{}, fmt.Errorf("txn: applied, but %w", err)
	}
	if resp.Code != api.CodeOK {
		return res, &AnswerError{Op: api.OpTxn, Resp: resp}
	}
	return res, nil
}

// IsCondFalse reports whether err is a conditional write's answer that its condition
// was false (nothing was written).
func IsCondFalse(err error) bool {
	var ae *AnswerError
	return errors.As(err, &ae) && ae.Resp.Code == api.CodeCondFalse
}
