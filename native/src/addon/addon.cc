// mdocker_native: the syscalls the server needs in-process and Node lacks. Kept tiny:
// it checks arguments, makes the syscall and returns plain data; the TypeScript side
// (server/src/runtime/native.ts) owns defaults and lifecycle.
#include <napi.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Field 22 of /proc/PID/stat: the start time in clock ticks since boot. With the pid it
// names one process for the life of the machine, where a pid alone can be reused.
bool ReadStartTime(pid_t pid, unsigned long long* out) {
  char path[64];
  char buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // The command (field 2) may hold spaces and parentheses: count from the last ')'.
  char* p = strrchr(buf, ')');
  if (p == nullptr) return false;
  p++;
  for (int field = 3; field < 22; field++) {
    p = strchr(p + 1, ' ');
    if (p == nullptr) return false;
  }
  *out = strtoull(p + 1, nullptr, 10);
  return true;
}

Napi::Value ThrowErrno(Napi::Env env, const char* syscall_name, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall_name) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall_name));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// signalProcess(pid, startTime, signal) -> true when sent; false when that process is
// gone (the pid is free or belongs to another process now). The pidfd pins the process
// between the start-time check and the signal, so the signal never reaches a stranger.
Napi::Value SignalProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "signalProcess(pid, startTime, signal)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  unsigned long long expected = static_cast<unsigned long long>(info[1].As<Napi::Number>().Int64Value());
  int sig = info[2].As<Napi::Number>().Int32Value();
  if (pid <= 1 || sig < 0 || sig >= NSIG) {
    Napi::RangeError::New(env, "pid must be > 1 and signal a signal number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = PidfdOpen(pid);
  if (fd < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, "pidfd_open", errno);
  }
  unsigned long long actual = 0;
  if (!ReadStartTime(pid, &actual) || actual != expected) {
    close(fd);
    return Napi::Boolean::New(env, false);
  }
  long r = syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
  int saved = errno;
  close(fd);
  if (r < 0) {
    if (saved == ESRCH) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, "pidfd_send_signal", saved);
  }
  return Napi::Boolean::New(env, true);
}

// startTime(pid) -> the start time (clock ticks since boot) or null when no such process.
Napi::Value StartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "startTime(pid)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  unsigned long long t = 0;
  if (!ReadStartTime(info[0].As<Napi::Number>().Int32Value(), &t)) return env.Null();
  return Napi::Number::New(env, static_cast<double>(t));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("signalProcess", Napi::Function::New(env, SignalProcess));
  exports.Set("startTime", Napi::Function::New(env, StartTime));
  return exports;
}

}  // namespace

NODE_API_MODULE(mdocker_native, Init)
