#include "apps/dsv3/commands.h"
namespace dsv3::cli {
int cmd_init(Args&) { return 1; }
int cmd_inspect(Args&) { return 1; }
}
