// The subcommand interface shared by main.cc and the cmd_<name>.cc files.
#pragma once
#include <string>
#include <vector>

#include "apps/dsv3/args.h"

namespace dsv3::cli {

// Each subcommand: a function taking its arguments (after the subcommand name) and returning the
// process exit code. Errors are thrown as dsv3::Error and printed by main.
int cmd_init(Args& a);
int cmd_convert(Args& a);
int cmd_quantize(Args& a);
int cmd_inspect(Args& a);
int cmd_logits(Args& a);
int cmd_tokenize(Args& a);
int cmd_detokenize(Args& a);
int cmd_tokenizer(Args& a);  // tokenizer train
int cmd_template(Args& a);
int cmd_generate(Args& a);
int cmd_chat(Args& a);
int cmd_bench(Args& a);
int cmd_data(Args& a);  // data corpus, data prepare
int cmd_eval(Args& a);
int cmd_grad(Args& a);
int cmd_train(Args& a);
int cmd_plot(Args& a);

}  // namespace dsv3::cli
