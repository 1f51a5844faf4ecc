// mdocker_native: the syscalls the server needs in-process and Node lacks. Kept tiny:
// it checks arguments, makes the syscall and returns plain data; the TypeScript side
// (server/src/runtime/native.ts) owns defaults and lifecycle.
#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

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

// Shaped as Node's SystemError: code is the errno's name ("ENOENT"), errno its number,
// syscall the call that failed; callers branch on code, as on fs errors.
Napi::Error ErrnoError(Napi::Env env, const char* syscall_name, int err) {
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, std::string(syscall_name) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall_name));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, const char* syscall_name, int err) {
  ErrnoError(env, syscall_name, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Bad arguments carry Node's own codes for them.
void ThrowTypeError(Napi::Env env, const char* usage) {
  Napi::Error e = Napi::TypeError::New(env, usage);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
}

void ThrowRangeError(Napi::Env env, const char* message) {
  Napi::Error e = Napi::RangeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  e.ThrowAsJavaScriptException();
}

// A pidfd for pid only if the process there has this start time: the fd pins it, so
// what is done through the fd reaches that process and no other. Returns the fd, or -1
// when that process is gone (ESRCH, or another process's pid now), or -2 with errno set.
int PinnedPidfd(pid_t pid, unsigned long long expected) {
  int fd = PidfdOpen(pid);
  if (fd < 0) return errno == ESRCH ? -1 : -2;
  unsigned long long actual = 0;
  if (!ReadStartTime(pid, &actual) || actual != expected) {
    close(fd);
    return -1;
  }
  return fd;
}

// signalProcess(pid, startTime, signal) -> true when sent; false when that process is
// gone (the pid is free or belongs to another process now). The pidfd pins the process
// between the start-time check and the signal, so the signal never reaches a stranger.
Napi::Value SignalProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    ThrowTypeError(env, "signalProcess(pid, startTime, signal)");
    return env.Undefined();
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  unsigned long long expected = static_cast<unsigned long long>(info[1].As<Napi::Number>().Int64Value());
  int sig = info[2].As<Napi::Number>().Int32Value();
  if (pid <= 1 || sig < 0 || sig >= NSIG) {
    ThrowRangeError(env, "pid must be > 1 and signal a signal number");
    return env.Undefined();
  }
  int fd = PinnedPidfd(pid, expected);
  if (fd == -1) return Napi::Boolean::New(env, false);
  if (fd < 0) return ThrowErrno(env, "pidfd_open", errno);
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
    ThrowTypeError(env, "startTime(pid)");
    return env.Undefined();
  }
  unsigned long long t = 0;
  if (!ReadStartTime(info[0].As<Napi::Number>().Int32Value(), &t)) return env.Null();
  return Napi::Number::New(env, static_cast<double>(t));
}

// ---- Processes on a new terminal, spawned without forking the server ----
//
// node-pty starts a process with forkpty(3): a fork() of the whole server, on its main
// thread, whose cost grows with the server's resident memory and is paid by every create
// (bench/PROFILE.md §3). posix_spawn(3) is glibc's clone(CLONE_VM | CLONE_VFORK): the
// same at any size. So every terminal, the server's and the CLI's, is opened here; the
// TypeScript side (server/src/runtime/pty.ts) reads the master with a tty.ReadStream as
// node-pty does.

// A child's exit, watched through its pidfd on the event loop (no thread per child):
// readable when the child exits, then reaped with waitid(P_PIDFD).
struct ExitWatch {
  uv_poll_t poll;
  int pidfd;
  bool reap;  // our own child: reap it and pass its status; else only tell of the exit
  napi_env env;
  Napi::FunctionReference callback;
};

void OnWatchClosed(uv_handle_t* handle) {
  auto* watch = static_cast<ExitWatch*>(handle->data);
  close(watch->pidfd);
  delete watch;
}

void OnChildExit(uv_poll_t* handle, int status, int events) {
  auto* watch = static_cast<ExitWatch*>(handle->data);
  int code = 0;
  int sig = 0;
  if (watch->reap) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int r;
    do {
      r = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(watch->pidfd), &info, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0 && info.si_pid == 0) return;  // not yet: a spurious wakeup
    if (r == 0 && info.si_code == CLD_EXITED) {
      code = info.si_status;
    } else if (r == 0) {
      sig = info.si_status;  // CLD_KILLED or CLD_DUMPED
    } else {
      code = -1;  // cannot happen for our own child; say so rather than invent a status
    }
  }
  uv_poll_stop(handle);
  Napi::Env env(watch->env);
  Napi::HandleScope scope(env);
  Napi::Function callback = watch->callback.Value();
  watch->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(handle), OnWatchClosed);
  if (watch->reap) {
    callback.MakeCallback(env.Global(), {Napi::Number::New(env, code), Napi::Number::New(env, sig)});
  } else {
    callback.MakeCallback(env.Global(), {});
  }
}

// Watches pidfd (ours from now on) on the event loop; callback runs once, see OnChildExit.
void WatchPidfd(napi_env env, uv_loop_t* loop, int pidfd, bool reap, Napi::Function callback) {
  auto* watch = new ExitWatch();
  watch->pidfd = pidfd;
  watch->reap = reap;
  watch->env = env;
  watch->callback = Napi::Persistent(callback);
  watch->poll.data = watch;
  uv_poll_init(loop, &watch->poll, pidfd);
  uv_poll_start(&watch->poll, UV_READABLE, OnChildExit);
}

bool StringArray(const Napi::Value& value, std::vector<std::string>* out) {
  if (!value.IsArray()) return false;
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) return false;
    std::string s = item.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) return false;
    out->push_back(std::move(s));
  }
  return true;
}

std::vector<char*> Argv(std::vector<std::string>* strings) {
  std::vector<char*> argv;
  for (auto& s : *strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  return argv;
}

// node-pty's terminal settings (its pty.cc), so a program sees the same terminal as before:
// cooked mode with UTF-8 erase, ^C/^\/^Z as signals.
void DefaultTermios(struct termios* t) {
  memset(t, 0, sizeof(*t));
  t->c_iflag = ICRNL | IXON | IXANY | IMAXBEL | BRKINT | IUTF8;
  t->c_oflag = OPOST | ONLCR;
  t->c_cflag = CREAD | CS8 | HUPCL;
  t->c_lflag = ICANON | ISIG | IEXTEN | ECHO | ECHOE | ECHOK | ECHOKE | ECHOCTL;
  t->c_cc[VEOF] = 4;
  t->c_cc[VEOL] = 0xff;
  t->c_cc[VEOL2] = 0xff;
  t->c_cc[VERASE] = 0x7f;
  t->c_cc[VWERASE] = 23;
  t->c_cc[VKILL] = 21;
  t->c_cc[VREPRINT] = 18;
  t->c_cc[VINTR] = 3;
  t->c_cc[VQUIT] = 0x1c;
  t->c_cc[VSUSP] = 26;
  t->c_cc[VSTART] = 17;
  t->c_cc[VSTOP] = 19;
  t->c_cc[VLNEXT] = 22;
  t->c_cc[VDISCARD] = 15;
  t->c_cc[VMIN] = 1;
  t->c_cc[VTIME] = 0;
  cfsetispeed(t, B38400);
  cfsetospeed(t, B38400);
}

// sealedCopy(path) -> fd: a memfd holding the file's bytes, sealed against any write,
// resize or change of its exec bits (CVE-2019-5736), close-on-exec. The launcher re-runs
// itself from such a copy unless it already runs from one (native/src/launcher/main.c);
// the server makes one copy at start and starts every launcher from it, instead of each
// launcher copying its own (time per start, memory per container: bench/PROFILE.md).
Napi::Value SealedCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) {
    ThrowTypeError(env, "sealedCopy(path)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ThrowErrno(env, "open", errno);
  struct stat st;
  if (fstat(src, &st) < 0) {
    int saved = errno;
    close(src);
    return ThrowErrno(env, "fstat", saved);
  }
  const unsigned int exec_flag = 0x0010U;  // MFD_EXEC (6.3+); older kernels say EINVAL
  int copy = memfd_create("mdocker-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | exec_flag);
  if (copy < 0 && errno == EINVAL) copy = memfd_create("mdocker-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0) {
    int saved = errno;
    close(src);
    return ThrowErrno(env, "memfd_create", saved);
  }
  off_t done = 0;
  while (done < st.st_size) {
    ssize_t n = sendfile(copy, src, nullptr, static_cast<size_t>(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = n < 0 ? errno : EIO;
      close(src);
      close(copy);
      return ThrowErrno(env, "sendfile", saved);
    }
    done += n;
  }
  close(src);
  const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  const int seal_exec = 0x0020;  // F_SEAL_EXEC (6.3+)
  if (fcntl(copy, F_ADD_SEALS, seals | seal_exec) < 0 && (errno != EINVAL || fcntl(copy, F_ADD_SEALS, seals) < 0)) {
    int saved = errno;
    close(copy);
    return ThrowErrno(env, "fcntl F_ADD_SEALS", saved);
  }
  return Napi::Number::New(env, copy);
}

// Starts file with posix_spawn: the file actions given (destroyed here), default signal
// dispositions, an empty signal mask and extra_flags (POSIX_SPAWN_SETSID for a terminal's
// session leader). posix_spawn's error, or 0 with *pid set. Safe on any thread.
int SpawnOnly(const std::string& file, posix_spawn_file_actions_t* actions, short extra_flags,
              std::vector<std::string>* args, std::vector<std::string>* envs, pid_t* pid) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, static_cast<short>(extra_flags | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
  std::vector<char*> argv = Argv(args);
  std::vector<char*> envp = Argv(envs);
  int err = posix_spawn(pid, file.c_str(), actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(actions);
  posix_spawnattr_destroy(&attr);
  return err;
}

// Watches our own new child's exit on the event loop: onExit(code, signal) once it is
// reaped. 0, or the errno of a pidfd that could not be had (the child is then killed and
// reaped). On the event loop's thread only.
int WatchChild(napi_env env, pid_t pid, Napi::Function on_exit) {
  // Our own unreaped child: its pid cannot be reused before OnChildExit's waitid.
  int pidfd = PidfdOpen(pid);
  int saved = errno;
  uv_loop_t* loop = nullptr;
  if (pidfd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (pidfd >= 0) close(pidfd);
    return pidfd < 0 ? saved : EINVAL;
  }
  WatchPidfd(env, loop, pidfd, true, on_exit);
  return 0;
}

// SpawnOnly, then WatchChild. Returns the pid, or -1 with *call and *error naming what
// failed.
pid_t SpawnWatched(napi_env env, const std::string& file, posix_spawn_file_actions_t* actions, short extra_flags,
                   std::vector<std::string>* args, std::vector<std::string>* envs, Napi::Function on_exit,
                   const char** call, int* error) {
  pid_t pid = -1;
  int err = SpawnOnly(file, actions, extra_flags, args, envs, &pid);
  if (err != 0) {
    *call = "posix_spawn";
    *error = err;
    return -1;
  }
  err = WatchChild(env, pid, on_exit);
  if (err != 0) {
    *call = "pidfd_open";
    *error = err;
    return -1;
  }
  return pid;
}

// ---- The spawner thread ----
//
// posix_spawn(3) is a vfork: the calling thread waits until the child has exec'd, and on a
// busy host the new child first waits for a CPU, milliseconds during which the event loop
// would stand still (bench/PROFILE.md). spawnPtyAsync hands that wait to one thread that
// lives as long as the process: not a thread per spawn, because the launcher's
// --die-with-parent is PR_SET_PDEATHSIG, which fires when the thread that started it ends.

struct SpawnJob {
  std::string file;
  std::vector<std::string> args;
  std::vector<std::string> envs;
  posix_spawn_file_actions_t actions;
  short flags = 0;
  // The child's ends of its pipes: ours to close once the child has them (or failed).
  std::vector<int> close_after;
  pid_t pid = -1;
  int error = 0;
  // The child's start time, read on the spawner thread too: a /proc/PID/stat of a child
  // that is busy in clone(2) or exec can take a millisecond. 0 when it could not be read.
  unsigned long long start_time = 0;
  Napi::FunctionReference on_exit;  // made and dropped on the event loop's thread
  Napi::ThreadSafeFunction done;    // onSpawned(error, pid), called on the event loop
};

// Leaked on purpose: the thread waits on them until the process ends, after static
// destructors have run.
struct SpawnQueue {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
  std::vector<SpawnJob*> jobs;
};
SpawnQueue* spawn_queue = nullptr;

void OnSpawned(Napi::Env env, Napi::Function on_spawned, SpawnJob* job) {
  if (env == nullptr) {
    // The environment is going away: nobody will watch this child.
    if (job->pid > 0) {
      kill(job->pid, SIGKILL);
      waitpid(job->pid, nullptr, 0);
    }
    delete job;
    return;
  }
  Napi::HandleScope scope(env);
  const char* call = "posix_spawn";
  int err = job->error;
  if (err == 0) {
    call = "pidfd_open";
    err = WatchChild(env, job->pid, job->on_exit.Value());
  }
  job->on_exit.Reset();
  if (err != 0) {
    on_spawned.Call({ErrnoError(env, call, err).Value(), env.Null()});
  } else {
    on_spawned.Call({env.Null(), Napi::Number::New(env, job->pid),
                     job->start_time != 0
                         ? Napi::Number::New(env, static_cast<double>(job->start_time)).As<Napi::Value>()
                         : env.Null()});
  }
  delete job;
}

void* SpawnerThread(void*) {
  for (;;) {
    pthread_mutex_lock(&spawn_queue->mutex);
    while (spawn_queue->jobs.empty()) pthread_cond_wait(&spawn_queue->ready, &spawn_queue->mutex);
    SpawnJob* job = spawn_queue->jobs.front();
    spawn_queue->jobs.erase(spawn_queue->jobs.begin());
    pthread_mutex_unlock(&spawn_queue->mutex);
    job->error = SpawnOnly(job->file, &job->actions, job->flags, &job->args, &job->envs, &job->pid);
    for (int fd : job->close_after) close(fd);
    // Our own unreaped child: the pid is its own until the event loop's waitid.
    if (job->error == 0 && !ReadStartTime(job->pid, &job->start_time)) job->start_time = 0;
    Napi::ThreadSafeFunction done = job->done;
    if (done.BlockingCall(job, OnSpawned) != napi_ok) {
      // The environment is closing: the job is left (its reference belongs to the event
      // loop's thread) and the child goes.
      if (job->pid > 0) {
        kill(job->pid, SIGKILL);
        waitpid(job->pid, nullptr, 0);
      }
    }
    done.Release();
  }
  return nullptr;
}

// Queues job for the spawner thread, started on first use with every signal blocked (the
// event loop's thread handles them). pthread_create's error, or 0.
int QueueSpawn(SpawnJob* job) {
  if (spawn_queue == nullptr) {
    auto* queue = new SpawnQueue();
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    spawn_queue = queue;
    int err = pthread_create(&thread, &attr, SpawnerThread, nullptr);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (err != 0) {
      spawn_queue = nullptr;
      delete queue;
      return err;
    }
  }
  pthread_mutex_lock(&spawn_queue->mutex);
  spawn_queue->jobs.push_back(job);
  pthread_cond_signal(&spawn_queue->ready);
  pthread_mutex_unlock(&spawn_queue->mutex);
  return 0;
}

// The file actions' last steps: with exec_fd (a sealedCopy), it becomes the child's fd 3
// and *file /proc/self/fd/3, the program run (file only named argv[0]); every other fd
// beyond stdin, stdout and stderr is closed.
void AddExecActions(posix_spawn_file_actions_t* actions, int exec_fd, std::string* file) {
  if (exec_fd >= 0) {
    posix_spawn_file_actions_adddup2(actions, exec_fd, 3);
    posix_spawn_file_actions_addclosefrom_np(actions, 4);
    *file = "/proc/self/fd/3";
  } else {
    posix_spawn_file_actions_addclosefrom_np(actions, STDERR_FILENO + 1);
  }
}

// A new terminal and the file actions that make it a child's: master (non-blocking,
// close-on-exec), our own copy of the slave, and actions (initialized here) that open the
// slave as the child's controlling terminal on stdin, stdout and stderr, hand on execFd
// as fd 3 (then *file becomes /proc/self/fd/3) and close every other fd. false when it
// threw.
bool OpenPtyForSpawn(Napi::Env env, int cols, int rows, int exec_fd, const std::string& cwd, std::string* file,
                     int* master_out, int* slave_out, posix_spawn_file_actions_t* actions) {
  if (cols < 1 || rows < 1 || cols > 0xffff || rows > 0xffff) {
    ThrowRangeError(env, "cols and rows must be 1..65535");
    return false;
  }
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    ThrowErrno(env, "posix_openpt", errno);
    return false;
  }
  char name[64];
  if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
    int saved = errno;
    close(master);
    ThrowErrno(env, "ptsname", saved);
    return false;
  }
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int saved = errno;
    close(master);
    ThrowErrno(env, "open pty", saved);
    return false;
  }
  struct termios termios;
  DefaultTermios(&termios);
  struct winsize size = {static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
  if (tcsetattr(slave, TCSANOW, &termios) < 0 || ioctl(master, TIOCSWINSZ, &size) < 0 ||
      fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0) {
    int saved = errno;
    close(slave);
    close(master);
    ThrowErrno(env, "pty setup", saved);
    return false;
  }
  posix_spawn_file_actions_init(actions);
  // glibc runs the file actions after setsid(): opening the slave without O_NOCTTY in a
  // session leader with no terminal makes it the controlling terminal, as login_tty(3)
  // in node-pty's forkpty does (^C, SIGWINCH and hangups reach the child's group).
  // glibc copies the path and the directory into the actions.
  posix_spawn_file_actions_addopen(actions, STDIN_FILENO, name, O_RDWR, 0);
  posix_spawn_file_actions_adddup2(actions, STDIN_FILENO, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions, STDIN_FILENO, STDERR_FILENO);
  AddExecActions(actions, exec_fd, file);
  posix_spawn_file_actions_addchdir_np(actions, cwd.c_str());
  *master_out = master;
  *slave_out = slave;
  return true;
}

// spawnPty(file, args, env, cwd, cols, rows, onExit(code, signal)[, execFd]) -> { pid, fd, slave }
// With execFd (a sealedCopy), the program run is that fd's content, as fd 3 of the child
// (/proc/self/fd/3), and file only names it in argv[0].
// args include argv[0]. The child is a session leader with the terminal as its
// controlling terminal (the launcher hands it on to the container's init); stdin, stdout
// and stderr are the terminal; every other fd is closed; signal dispositions and mask are
// the defaults (Node ignores SIGPIPE). fd is the master, non-blocking and close-on-exec;
// slave is our own copy of the other side, for the caller to close once it has read the
// child's last output: while the slave is open the master never reads EIO, which on
// Linux may come before the last few KiB the child wrote (node-pty loses them too).
Napi::Value SpawnPty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> args;
  std::vector<std::string> envs;
  if (info.Length() < 7 || info.Length() > 8 || !info[0].IsString() || !StringArray(info[1], &args) || args.empty() ||
      !StringArray(info[2], &envs) || !info[3].IsString() || !info[4].IsNumber() || !info[5].IsNumber() ||
      !info[6].IsFunction() || (info.Length() == 8 && !info[7].IsNumber())) {
    ThrowTypeError(env, "spawnPty(file, args[], env[], cwd, cols, rows, onExit[, execFd])");
    return env.Undefined();
  }
  int exec_fd = info.Length() == 8 ? info[7].As<Napi::Number>().Int32Value() : -1;
  std::string file = info[0].As<Napi::String>().Utf8Value();
  std::string cwd = info[3].As<Napi::String>().Utf8Value();
  int master = -1;
  int slave = -1;
  posix_spawn_file_actions_t actions;
  if (!OpenPtyForSpawn(env, info[4].As<Napi::Number>().Int32Value(), info[5].As<Napi::Number>().Int32Value(), exec_fd,
                       cwd, &file, &master, &slave, &actions))
    return env.Undefined();
  const char* failed = nullptr;
  int err = 0;
  pid_t pid =
      SpawnWatched(env, file, &actions, POSIX_SPAWN_SETSID, &args, &envs, info[6].As<Napi::Function>(), &failed, &err);
  if (pid < 0) {
    close(slave);
    close(master);
    return ThrowErrno(env, failed, err);
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, pid));
  result.Set("fd", Napi::Number::New(env, master));
  result.Set("slave", Napi::Number::New(env, slave));
  return result;
}

// spawnPtyAsync(file, args, env, cwd, cols, rows, onExit(code, signal), onSpawned(error, pid, startTime)[, execFd])
//   -> { fd, slave }
// spawnPty's terminal and child, but the posix_spawn runs on the spawner thread: the
// terminal is returned at once, and onSpawned is called on the event loop with the pid and
// its start time (null if unread), or with the error (posix_spawn's or pidfd_open's) and no
// child. onExit is as in spawnPty,
// for a child that was spawned. The caller closes fd and slave either way.
Napi::Value SpawnPtyAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* job = new SpawnJob();
  if (info.Length() < 8 || info.Length() > 9 || !info[0].IsString() || !StringArray(info[1], &job->args) ||
      job->args.empty() || !StringArray(info[2], &job->envs) || !info[3].IsString() || !info[4].IsNumber() ||
      !info[5].IsNumber() || !info[6].IsFunction() || !info[7].IsFunction() ||
      (info.Length() == 9 && !info[8].IsNumber())) {
    delete job;
    ThrowTypeError(env, "spawnPtyAsync(file, args[], env[], cwd, cols, rows, onExit, onSpawned[, execFd])");
    return env.Undefined();
  }
  int exec_fd = info.Length() == 9 ? info[8].As<Napi::Number>().Int32Value() : -1;
  job->file = info[0].As<Napi::String>().Utf8Value();
  std::string cwd = info[3].As<Napi::String>().Utf8Value();
  int master = -1;
  int slave = -1;
  if (!OpenPtyForSpawn(env, info[4].As<Napi::Number>().Int32Value(), info[5].As<Napi::Number>().Int32Value(), exec_fd,
                       cwd, &job->file, &master, &slave, &job->actions)) {
    delete job;
    return env.Undefined();
  }
  job->flags = POSIX_SPAWN_SETSID;
  job->on_exit = Napi::Persistent(info[6].As<Napi::Function>());
  job->done = Napi::ThreadSafeFunction::New(env, info[7].As<Napi::Function>(), "mdocker-spawn", 0, 1);
  int err = QueueSpawn(job);
  if (err != 0) {
    job->done.Release();
    posix_spawn_file_actions_destroy(&job->actions);
    delete job;
    close(slave);
    close(master);
    return ThrowErrno(env, "pthread_create", err);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, master));
  result.Set("slave", Napi::Number::New(env, slave));
  return result;
}

// Three pipes for a child and the file actions that give it their ends as stdin, stdout
// and stderr (with execFd as fd 3, then *file becomes /proc/self/fd/3), in /, with no
// other fd. parent_end: stdin's write end and the read ends, non-blocking; child_end: for
// the caller to close once the child is spawned. false when it threw.
bool OpenPipesForSpawn(Napi::Env env, int exec_fd, std::string* file, int parent_end[3], int child_end[3],
                       posix_spawn_file_actions_t* actions) {
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  auto close_all = [&pipes]() {
    for (auto& p : pipes) {
      for (int fd : p) {
        if (fd >= 0) close(fd);
      }
    }
  };
  for (auto& p : pipes) {
    if (pipe2(p, O_CLOEXEC) < 0) {
      int saved = errno;
      close_all();
      ThrowErrno(env, "pipe2", saved);
      return false;
    }
  }
  // The child's ends: stdin reads pipes[0][0], stdout and stderr write pipes[1][1], pipes[2][1].
  const int child[3] = {pipes[0][0], pipes[1][1], pipes[2][1]};
  const int parent[3] = {pipes[0][1], pipes[1][0], pipes[2][0]};
  for (int fd : parent) {
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
      int saved = errno;
      close_all();
      ThrowErrno(env, "fcntl O_NONBLOCK", saved);
      return false;
    }
  }
  posix_spawn_file_actions_init(actions);
  for (int i = 0; i < 3; i++) posix_spawn_file_actions_adddup2(actions, child[i], i);
  posix_spawn_file_actions_addchdir_np(actions, "/");
  AddExecActions(actions, exec_fd, file);
  for (int i = 0; i < 3; i++) {
    parent_end[i] = parent[i];
    child_end[i] = child[i];
  }
  return true;
}

// spawnPipedAsync(file, args, env, onExit(code, signal), onSpawned(error, pid, startTime)[, execFd])
//   -> { stdin, stdout, stderr }
// A program (the launcher's exec, its network verbs, mdocker-nft, ...) on three pipes,
// started with posix_spawn(3) for the reason spawnPty is (child_process's fork() costs the
// server time in proportion to its resident memory), on the spawner thread as in
// spawnPtyAsync. stdin is the write end, stdout and stderr the read ends, all non-blocking
// and close-on-exec, returned at once (the child's ends are closed once it has them); then
// onSpawned tells of the child or of the error. The caller closes the three fds either way.
// With execFd the program run is that fd's content, as in spawnPty. The child runs in /,
// with default signal dispositions and mask and no other fd; onExit is spawnPty's.
Napi::Value SpawnPipedAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* job = new SpawnJob();
  if (info.Length() < 5 || info.Length() > 6 || !info[0].IsString() || !StringArray(info[1], &job->args) ||
      job->args.empty() || !StringArray(info[2], &job->envs) || !info[3].IsFunction() || !info[4].IsFunction() ||
      (info.Length() == 6 && !info[5].IsNumber())) {
    delete job;
    ThrowTypeError(env, "spawnPipedAsync(file, args[], env[], onExit, onSpawned[, execFd])");
    return env.Undefined();
  }
  int exec_fd = info.Length() == 6 ? info[5].As<Napi::Number>().Int32Value() : -1;
  job->file = info[0].As<Napi::String>().Utf8Value();
  int parent_end[3];
  int child_end[3];
  if (!OpenPipesForSpawn(env, exec_fd, &job->file, parent_end, child_end, &job->actions)) {
    delete job;
    return env.Undefined();
  }
  job->close_after.assign(child_end, child_end + 3);
  job->on_exit = Napi::Persistent(info[3].As<Napi::Function>());
  job->done = Napi::ThreadSafeFunction::New(env, info[4].As<Napi::Function>(), "mdocker-spawn", 0, 1);
  int err = QueueSpawn(job);
  if (err != 0) {
    job->done.Release();
    posix_spawn_file_actions_destroy(&job->actions);
    delete job;
    for (int fd : child_end) close(fd);
    for (int fd : parent_end) close(fd);
    return ThrowErrno(env, "pthread_create", err);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("stdin", Napi::Number::New(env, parent_end[0]));
  result.Set("stdout", Napi::Number::New(env, parent_end[1]));
  result.Set("stderr", Napi::Number::New(env, parent_end[2]));
  return result;
}

// spawnInherited(file, args, env, stdinNull, onExit(code, signal)[, execFd]) -> pid
// A foreground child on this process's own stdout and stderr (and stdin, unless stdinNull:
// then /dev/null), in /, with no other fd and default signal dispositions and mask: the
// CLI's launcher without a terminal. posix_spawn, not child_process's fork of the whole
// Node process. With execFd the program run is that fd's content, as in spawnPty; onExit
// as spawnPty's.
Napi::Value SpawnInherited(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> args;
  std::vector<std::string> envs;
  if (info.Length() < 5 || info.Length() > 6 || !info[0].IsString() || !StringArray(info[1], &args) || args.empty() ||
      !StringArray(info[2], &envs) || !info[3].IsBoolean() || !info[4].IsFunction() ||
      (info.Length() == 6 && !info[5].IsNumber())) {
    ThrowTypeError(env, "spawnInherited(file, args[], env[], stdinNull, onExit[, execFd])");
    return env.Undefined();
  }
  int exec_fd = info.Length() == 6 ? info[5].As<Napi::Number>().Int32Value() : -1;
  std::string file = info[0].As<Napi::String>().Utf8Value();
  bool stdin_null = info[3].As<Napi::Boolean>().Value();
  // The child shares these open files with us: blocking, as libuv's spawn leaves them for
  // a child (a program reading a terminal Node made non-blocking would see EAGAIN).
  for (int fd = stdin_null ? STDOUT_FILENO : STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) != 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_null) posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // Node may have made them close-on-exec; a dup2 onto itself clears that in the child
  // (POSIX, glibc 2.29 and later), as libuv's spawn does for an inherited fd.
  for (int fd = stdin_null ? STDOUT_FILENO : STDIN_FILENO; fd <= STDERR_FILENO; fd++)
    posix_spawn_file_actions_adddup2(&actions, fd, fd);
  posix_spawn_file_actions_addchdir_np(&actions, "/");
  AddExecActions(&actions, exec_fd, &file);
  const char* failed = nullptr;
  int err = 0;
  pid_t pid = SpawnWatched(env, file, &actions, 0, &args, &envs, info[4].As<Napi::Function>(), &failed, &err);
  if (pid < 0) return ThrowErrno(env, failed, err);
  return Napi::Number::New(env, pid);
}

// watchExit(pid, startTime, onExit()) -> true when watching; false when that process is
// gone already. onExit runs on the event loop once the process has exited (any process,
// not only our children: a pidfd is readable from then on), in place of polling.
Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
    ThrowTypeError(env, "watchExit(pid, startTime, onExit)");
    return env.Undefined();
  }
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  unsigned long long expected = static_cast<unsigned long long>(info[1].As<Napi::Number>().Int64Value());
  if (pid <= 1) {
    ThrowRangeError(env, "pid must be > 1");
    return env.Undefined();
  }
  int fd = PinnedPidfd(pid, expected);
  if (fd == -1) return Napi::Boolean::New(env, false);
  if (fd < 0) return ThrowErrno(env, "pidfd_open", errno);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    close(fd);
    return ThrowErrno(env, "napi_get_uv_event_loop", EINVAL);
  }
  WatchPidfd(env, loop, fd, false, info[2].As<Napi::Function>());
  return Napi::Boolean::New(env, true);
}

// resizePty(fd, cols, rows): TIOCSWINSZ on the master; the kernel tells the terminal's
// foreground process group (SIGWINCH).
Napi::Value ResizePty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    ThrowTypeError(env, "resizePty(fd, cols, rows)");
    return env.Undefined();
  }
  int cols = info[1].As<Napi::Number>().Int32Value();
  int rows = info[2].As<Napi::Number>().Int32Value();
  if (cols < 1 || rows < 1 || cols > 0xffff || rows > 0xffff) {
    ThrowRangeError(env, "cols and rows must be 1..65535");
    return env.Undefined();
  }
  struct winsize size = {static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &size) < 0) return ThrowErrno(env, "ioctl", errno);
  return env.Undefined();
}

// raiseOpenFilesLimit() -> { soft, hard }: the soft RLIMIT_NOFILE raised to the hard one.
// The server holds several fds per container (a pty master and its slave copy, the
// stats reader's cgroup files, sockets): about 9 000 at 1000 containers, where many
// hosts give a process a soft limit of 1024. Node, on epoll, has no use for the low one.
Napi::Value RaiseOpenFilesLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return ThrowErrno(env, "getrlimit", errno);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0) return ThrowErrno(env, "setrlimit", errno);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("soft", Napi::Number::New(env, static_cast<double>(limit.rlim_cur)));
  result.Set("hard", Napi::Number::New(env, static_cast<double>(limit.rlim_max)));
  return result;
}

// isTerminal(fd) -> boolean: isatty(3). Node's own is in node:tty, whose load (net and
// the stream modules with it) costs the CLI's start several ms for one ioctl.
Napi::Value IsTerminal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "isTerminal(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, isatty(info[0].As<Napi::Number>().Int32Value()) == 1);
}

// replaceProcess(path, argv): execv(3) in this process, with its environment, its stdio
// (and any other fd without FD_CLOEXEC) and its pid; returns only by throwing. `mdocker
// serve` restarts Node with the V8 flags it needs (a shebang gives every verb the same
// flags, and serve's cost the others' start), and an exec, unlike a child, leaves no
// parent in front of the server.
Napi::Value ReplaceProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> args;
  if (info.Length() < 2 || !info[0].IsString() || !StringArray(info[1], &args) || args.empty()) {
    Napi::TypeError::New(env, "replaceProcess(path, argv)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::vector<char*> argv = Argv(&args);
  // Node marks its stdio close-on-exec at start; the new program keeps the same 0, 1 and 2.
  int flags[3];
  for (int fd = 0; fd < 3; fd++) {
    flags[fd] = fcntl(fd, F_GETFD);
    if (flags[fd] >= 0) fcntl(fd, F_SETFD, flags[fd] & ~FD_CLOEXEC);
  }
  execv(path.c_str(), argv.data());
  int saved = errno;
  for (int fd = 0; fd < 3; fd++)
    if (flags[fd] >= 0) fcntl(fd, F_SETFD, flags[fd]);
  return ThrowErrno(env, "execv", saved);
}

// ---- Reading a container's state for lessons ----

void CloseFd(const int* fd) {
  if (*fd >= 0) close(*fd);
}
#define cleanup_fd __attribute__((cleanup(CloseFd)))

// Reads the pid and start time arguments shared by the lesson calls; false after throwing.
bool ProcessArgs(const Napi::CallbackInfo& info, size_t count, const char* usage, pid_t* pid,
                 unsigned long long* start_time) {
  Napi::Env env = info.Env();
  if (info.Length() != count || !info[0].IsNumber() || !info[1].IsNumber()) {
    ThrowTypeError(env, usage);
    return false;
  }
  *pid = info[0].As<Napi::Number>().Int32Value();
  *start_time = static_cast<unsigned long long>(info[1].As<Napi::Number>().Int64Value());
  if (*pid <= 1) {
    ThrowRangeError(env, "pid must be > 1");
    return false;
  }
  return true;
}

struct UtsLookup {
  int pidfd;
  int err;
  struct utsname name;
};

// Runs on a thread of its own that ends right after: setns moves only the calling
// thread, and no thread of Node's (the loop, the libuv pool, V8's) may ever change
// namespace, or later work on it would see the container's.
void* UtsLookupThread(void* arg) {
  auto* lookup = static_cast<UtsLookup*>(arg);
  if (setns(lookup->pidfd, CLONE_NEWUTS) < 0 || uname(&lookup->name) < 0) lookup->err = errno;
  return nullptr;
}

// The pidfd of the process named by the call's (pid, startTime) arguments, pinned by its
// start time: kPidfdGone when it is gone (answer null), kPidfdThrown after throwing.
constexpr int kPidfdGone = -1;
constexpr int kPidfdThrown = -2;
int PidfdOfArgs(const Napi::CallbackInfo& info, const char* usage) {
  pid_t pid = 0;
  unsigned long long expected = 0;
  if (!ProcessArgs(info, 2, usage, &pid, &expected)) return kPidfdThrown;
  int pidfd = PinnedPidfd(pid, expected);
  if (pidfd == -1) return kPidfdGone;
  if (pidfd < 0) {
    ThrowErrno(info.Env(), "pidfd_open", errno);
    return kPidfdThrown;
  }
  return pidfd;
}

// Runs fn(arg) on a thread of its own and waits for it (setns moves only the calling
// thread: see UtsLookupThread). pthread_create's error, or 0.
int RunOnOwnThread(void* (*fn)(void*), void* arg) {
  pthread_t thread;
  int err = pthread_create(&thread, nullptr, fn, arg);
  if (err == 0) pthread_join(thread, nullptr);
  return err;
}

// utsHostname(pid, startTime) -> the hostname the process sees now (its UTS namespace's),
// or null when that process is gone. The pidfd is taken only if the start time matches,
// and setns through a pidfd reaches that process or fails (ESRCH): a reused pid cannot
// make this answer with another namespace's name.
Napi::Value UtsHostname(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cleanup_fd int pidfd = PidfdOfArgs(info, "utsHostname(pid, startTime)");
  if (pidfd == kPidfdThrown) return env.Undefined();
  if (pidfd == kPidfdGone) return env.Null();
  UtsLookup lookup;
  memset(&lookup, 0, sizeof(lookup));
  lookup.pidfd = pidfd;
  int err = RunOnOwnThread(UtsLookupThread, &lookup);
  if (err != 0) return ThrowErrno(env, "pthread_create", err);
  if (lookup.err == ESRCH) return env.Null();
  if (lookup.err != 0) return ThrowErrno(env, "setns", lookup.err);
  lookup.name.nodename[sizeof(lookup.name.nodename) - 1] = '\0';
  return Napi::String::New(env, lookup.name.nodename);
}

// readFileInRoot(pid, startTime, path, maxBytes) -> a Buffer with the file's first
// maxBytes bytes (empty for anything but a regular file, which is never read), or null
// when there is no such file or the process is gone.
//
// The path is the container's: a host-side open of /proc/PID/root/PATH would follow an
// absolute symlink the container planted (ln -s /etc/shadow /tmp/x) to the host's file.
// openat2 with RESOLVE_IN_ROOT resolves every "/" and ".." of the walk, symlinks'
// included, at the container's root; RESOLVE_NO_MAGICLINKS refuses /proc/*/root-style
// links, which jump anywhere. The root fd is of the process with this start time: the
// start time read after opening it proves the pid was not reused in between. O_NONBLOCK
// so a FIFO cannot hold the server's thread; nothing but a regular file is read.
Napi::Value ReadFileInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = 0;
  unsigned long long expected = 0;
  const char* usage = "readFileInRoot(pid, startTime, path, maxBytes)";
  if (!ProcessArgs(info, 4, usage, &pid, &expected)) return env.Undefined();
  if (!info[2].IsString() || !info[3].IsNumber()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  std::string path = info[2].As<Napi::String>().Utf8Value();
  int64_t max_bytes = info[3].As<Napi::Number>().Int64Value();
  if (path.empty() || path.find('\0') != std::string::npos || max_bytes < 0 || max_bytes > 16 * 1024 * 1024) {
    ThrowRangeError(env, "path must be a non-empty string and maxBytes 0..16 MiB");
    return env.Undefined();
  }
  char root_path[64];
  snprintf(root_path, sizeof(root_path), "/proc/%d/root", pid);
  cleanup_fd int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    if (errno == ENOENT || errno == ESRCH) return env.Null();
    return ThrowErrno(env, "open", errno);
  }
  unsigned long long actual = 0;
  if (!ReadStartTime(pid, &actual) || actual != expected) return env.Null();
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  cleanup_fd int fd = static_cast<int>(syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how)));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES) return env.Null();
    return ThrowErrno(env, "openat2", errno);
  }
  struct stat st;
  if (fstat(fd, &st) < 0) return ThrowErrno(env, "fstat", errno);
  std::vector<char> data;
  if (S_ISREG(st.st_mode)) {
    data.resize(static_cast<size_t>(max_bytes));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = read(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ThrowErrno(env, "read", errno);
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    data.resize(done);
  }
  return Napi::Buffer<char>::Copy(env, data.data(), data.size());
}

// ---- Files in and out of a container's root ----
//
// Every path is the container's, resolved from an fd of its root by openat2: RESOLVE_IN_ROOT
// makes "/" and ".." of the walk (symlinks' targets included) stop at that root, as inside
// the container, so `ln -s /etc/shadow x` names the container's file, never the host's;
// RESOLVE_NO_MAGICLINKS refuses /proc/*/root-style links, which jump anywhere. The kernel
// checks each step at the moment it takes it: a component swapped for a symlink between
// two requests, or during one, is still resolved inside. A new entry is made by name in a
// directory fd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, mkdirat, symlinkat,
// renameat), never through a path the container could change meanwhile.

// statfs magics of kernel filesystems whose files are not the container's data: the server
// reads as host root, which a file there may answer differently than the container's own
// root (kernel addresses in /proc/kallsyms, host-root-only sysfs files), so nothing on them
// is opened.
bool IsKernelFilesystem(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0x9fa0UL:      // proc
    case 0x62656572UL:  // sysfs
    case 0x27e0ebUL:    // cgroup
    case 0x63677270UL:  // cgroup2
    case 0x64626720UL:  // debugfs
    case 0x74726163UL:  // tracefs
    case 0x73636673UL:  // securityfs
    case 0xcafe4a11UL:  // bpf
    case 0x1cd1UL:      // devpts
    case 0x19800202UL:  // mqueue
    case 0x62656570UL:  // configfs
    case 0x6165676cUL:  // pstore
    case 0xde5e81e4UL:  // efivarfs
    case 0x6e736673UL:  // nsfs
      return true;
    default:
      return false;
  }
}

// An errno for an fd on a kernel filesystem, told apart from the kernel's own EACCES.
constexpr int kKernelFsErrno = EREMOTEIO;

bool ValidName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && name.size() <= 255;
}

bool ValidPath(const std::string& path) {
  return !path.empty() && path.size() <= 4096 && path.find('\0') == std::string::npos;
}

// The id (host side) that a map (/proc/PID/uid_map) gives the container's id 0, or -1.
long long MappedRoot(int proc_fd, const char* file) {
  cleanup_fd int fd = openat(proc_fd, file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char* line = buf;
  while (line != nullptr && *line != '\0') {
    unsigned long long inside = 0;
    unsigned long long outside = 0;
    unsigned long long count = 0;
    if (sscanf(line, "%llu %llu %llu", &inside, &outside, &count) == 3 && inside == 0 && count > 0) {
      return static_cast<long long>(outside);
    }
    line = strchr(line, '\n');
    if (line != nullptr) line++;
  }
  return -1;
}

Napi::Object StatObject(Napi::Env env, const struct stat& st) {
  Napi::Object out = Napi::Object::New(env);
  const char* type = S_ISREG(st.st_mode)   ? "file"
                     : S_ISDIR(st.st_mode) ? "dir"
                     : S_ISLNK(st.st_mode) ? "symlink"
                                           : "other";
  out.Set("type", Napi::String::New(env, type));
  out.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  out.Set("mode", Napi::Number::New(env, st.st_mode & 07777));
  out.Set("mtimeMs", Napi::Number::New(env, static_cast<double>(st.st_mtim.tv_sec) * 1000.0 +
                                                static_cast<double>(st.st_mtim.tv_nsec / 1000000)));
  out.Set("uid", Napi::Number::New(env, st.st_uid));
  out.Set("gid", Napi::Number::New(env, st.st_gid));
  return out;
}

// openat2, retried on EAGAIN: RESOLVE_IN_ROOT answers it when a rename anywhere on the
// system raced a ".." of the walk (the kernel cannot then prove it stayed inside).
int Openat2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = resolve;
  for (int attempt = 0;; attempt++) {
    int fd = static_cast<int>(syscall(SYS_openat2, dir_fd, path, &how, sizeof(how)));
    if (fd >= 0 || errno != EAGAIN || attempt >= 16) return fd;
  }
}

// openRoot(pid, startTime) -> { fd, uid, gid } or null when that process is gone, or its
// root is the host's.
// fd (O_PATH, close-on-exec, the caller's to close) is the process's root directory as it
// sees it (/proc/PID/root: its mount namespace's tree, pivot_root included); uid and gid
// are the host ids its user namespace gives its root (-1 when unmapped). Both are read
// through one /proc/PID directory fd, which stays that process's even if the pid is
// reused, and the start time read through it proves it is the process asked for.
Napi::Value OpenRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = 0;
  unsigned long long expected = 0;
  if (!ProcessArgs(info, 2, "openRoot(pid, startTime)", &pid, &expected)) return env.Undefined();
  char proc_path[64];
  snprintf(proc_path, sizeof(proc_path), "/proc/%d", pid);
  cleanup_fd int proc_fd = open(proc_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0) {
    if (errno == ENOENT || errno == ESRCH) return env.Null();
    return ThrowErrno(env, "open", errno);
  }
  unsigned long long actual = 0;
  if (!ReadStartTime(pid, &actual) || actual != expected) return env.Null();
  int root = openat(proc_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    if (errno == ENOENT || errno == ESRCH || errno == EACCES) return env.Null();
    return ThrowErrno(env, "openat", errno);
  }
  // A process whose root is ours is no container's (or not yet: before its pivot_root a
  // container's init stands in a copy of the host's mounts): nothing is opened through it.
  struct stat ours, theirs;
  if (stat("/", &ours) < 0 || fstat(root, &theirs) < 0 ||
      (ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino)) {
    close(root);
    return env.Null();
  }
  // The stat file is read by path above; a reused pid between the open and that read would
  // show another start time, so proc_fd (and root through it) is the process asked for.
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, root));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(MappedRoot(proc_fd, "uid_map"))));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(MappedRoot(proc_fd, "gid_map"))));
  return out;
}

// openInRoot(dirFd, path, follow) -> { fd, type, size, mode, mtimeMs, uid, gid }.
// follow: path is resolved with dirFd as the root (RESOLVE_IN_ROOT), symlinks followed
// inside it; else path is one name in dirFd, and a symlink there is not followed. The
// entry is first opened O_PATH (no open of a device, FIFO or socket ever happens) and
// only a regular file or a directory is then opened for reading, through our own
// /proc/self/fd link to that O_PATH fd (the same inode: its type cannot change); for
// anything else fd is -1. Errors are thrown as SystemErrors (ENOENT, ENOTDIR, ELOOP,
// EXDEV, ...); EREMOTEIO for an entry on a kernel filesystem (IsKernelFilesystem).
Napi::Value OpenInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsBoolean()) {
    ThrowTypeError(env, "openInRoot(dirFd, path, follow)");
    return env.Undefined();
  }
  int dir_fd = info[0].As<Napi::Number>().Int32Value();
  std::string path = info[1].As<Napi::String>().Utf8Value();
  bool follow = info[2].As<Napi::Boolean>().Value();
  if (follow ? !ValidPath(path) : !ValidName(path)) {
    ThrowRangeError(env, follow ? "path must be 1..4096 bytes without NUL" : "name must be one path component");
    return env.Undefined();
  }
  uint64_t resolve = follow ? (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
                            : (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  uint64_t flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  cleanup_fd int path_fd = Openat2(dir_fd, path.c_str(), flags, resolve, 0);
  if (path_fd < 0) return ThrowErrno(env, "openat2", errno);
  struct stat st;
  if (fstat(path_fd, &st) < 0) return ThrowErrno(env, "fstat", errno);
  struct statfs fs;
  if (fstatfs(path_fd, &fs) < 0) return ThrowErrno(env, "fstatfs", errno);
  if (IsKernelFilesystem(fs.f_type)) return ThrowErrno(env, "fstatfs", kKernelFsErrno);
  int fd = -1;
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", path_fd);
    fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (fd < 0) return ThrowErrno(env, "open", errno);
  }
  Napi::Object out = StatObject(env, st);
  out.Set("fd", Napi::Number::New(env, fd));
  return out;
}

// The entries of dirFd but "." and "..", each lstat'ed, at most maxEntries of them, as
// { entries, truncated }; make(st, dirFd, name) makes an entry's object, or returns an
// empty one to leave the entry out (replaced since the stat). An entry gone since readdir
// is not listed (the container is live). dirFd stays the caller's: it is read through a
// duplicate, rewound first.
template <typename Make>
Napi::Value ListEntries(const Napi::CallbackInfo& info, const char* usage, Make make) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  int dir_fd = info[0].As<Napi::Number>().Int32Value();
  int64_t max_entries = info[1].As<Napi::Number>().Int64Value();
  if (max_entries < 0 || max_entries > 1000000) {
    ThrowRangeError(env, "maxEntries must be 0..1000000");
    return env.Undefined();
  }
  int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ThrowErrno(env, "fcntl", errno);
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    int saved = errno;
    close(dup_fd);
    return ThrowErrno(env, "fdopendir", saved);
  }
  rewinddir(dir);
  Napi::Array entries = Napi::Array::New(env);
  uint32_t count = 0;
  bool truncated = false;
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent* ent = readdir(dir);
    if (ent == nullptr) {
      err = errno;
      break;
    }
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    if (count >= static_cast<uint64_t>(max_entries)) {
      truncated = true;
      break;
    }
    struct stat st;
    if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    Napi::Object entry = make(st, dirfd(dir), ent->d_name);
    if (!entry.IsEmpty()) entries.Set(count++, entry);
  }
  closedir(dir);
  if (err != 0) return ThrowErrno(env, "readdir", err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("entries", entries);
  out.Set("truncated", Napi::Boolean::New(env, truncated));
  return out;
}

// listDir(dirFd, maxEntries) -> { entries: [{ name, type, size, mode, mtimeMs, uid, gid,
// target? }], truncated }: ListEntries with a symlink as itself, with its target.
Napi::Value ListDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return ListEntries(info, "listDir(dirFd, maxEntries)", [env](const struct stat& st, int dir, const char* name) {
    Napi::Object entry = StatObject(env, st);
    entry.Set("name", Napi::String::New(env, name));
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(dir, name, target, sizeof(target) - 1);
      if (n >= 0) entry.Set("target", Napi::String::New(env, target, static_cast<size_t>(n)));
    }
    return entry;
  });
}

// The calling thread's filesystem ids set to the container root's host ids for the life
// of this object, its filesystem capabilities kept. An entry made in the container's
// writable layer (a tmpfs its user namespace mounted, under an overlay mounted there too)
// must be owned by an id mapped in that namespace, or the kernel refuses it (EOVERFLOW):
// made as host root it could not be; made this way it is the container root's from the
// start. setfsuid(2) changes only the calling thread (glibc does not broadcast it, unlike
// setuid), and the destructor puts 0 back before the call returns to JavaScript. Changing
// the fsuid from 0 drops CAP_DAC_OVERRIDE and the other filesystem capabilities from the
// effective set; they are raised again from the permitted set, so the container root's
// own mode bits (a 0700 directory of uid 1000) do not stop the server where they would
// not stop the container's root.
class FsIdentity {
 public:
  FsIdentity(uid_t uid, gid_t gid) {
    if (uid == 0 && gid == 0) return;
    changed_ = true;
    setfsgid(gid);
    setfsuid(uid);
    ok_ = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))) == uid &&
          static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))) == gid && RaiseEffective();
  }
  ~FsIdentity() {
    if (!changed_) return;
    setfsuid(0);
    setfsgid(0);
  }
  FsIdentity(const FsIdentity&) = delete;
  FsIdentity& operator=(const FsIdentity&) = delete;
  bool ok() const { return ok_; }

 private:
  static bool RaiseEffective() {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &header, data) < 0) return false;
    for (auto& d : data) d.effective = d.permitted;
    return syscall(SYS_capset, &header, data) == 0;
  }
  bool changed_ = false;
  bool ok_ = true;
};

// Reads a uid, gid pair of arguments at index; false after throwing.
bool OwnerArgs(const Napi::CallbackInfo& info, size_t index, const char* usage, uid_t* uid, gid_t* gid) {
  if (!info[index].IsNumber() || !info[index + 1].IsNumber()) {
    ThrowTypeError(info.Env(), usage);
    return false;
  }
  int64_t u = info[index].As<Napi::Number>().Int64Value();
  int64_t g = info[index + 1].As<Napi::Number>().Int64Value();
  if (u < 0 || g < 0 || u >= 0xffffffffLL || g >= 0xffffffffLL) {
    ThrowRangeError(info.Env(), "uid and gid must be mapped ids");
    return false;
  }
  *uid = static_cast<uid_t>(u);
  *gid = static_cast<gid_t>(g);
  return true;
}

// Reads (dirFd, name[, ...]) arguments of the calls below; false after throwing.
bool DirNameArgs(const Napi::CallbackInfo& info, size_t count, const char* usage, int* dir_fd, std::string* name) {
  Napi::Env env = info.Env();
  if (info.Length() != count || !info[0].IsNumber() || !info[1].IsString()) {
    ThrowTypeError(env, usage);
    return false;
  }
  *dir_fd = info[0].As<Napi::Number>().Int32Value();
  *name = info[1].As<Napi::String>().Utf8Value();
  if (!ValidName(*name)) {
    ThrowRangeError(env, "name must be one path component");
    return false;
  }
  return true;
}

// The calls below make or change entries as the container's root: uid and gid are its
// host ids (openRoot), see FsIdentity.

// createAt(dirFd, name, mode, uid, gid) -> fd: a new regular file (O_CREAT | O_EXCL:
// never an existing entry, never through a symlink), open for writing, close-on-exec.
Napi::Value CreateAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "createAt(dirFd, name, mode, uid, gid)";
  int dir_fd = -1;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!DirNameArgs(info, 5, usage, &dir_fd, &name) || !OwnerArgs(info, 3, usage, &uid, &gid)) return env.Undefined();
  if (!info[2].IsNumber()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  mode_t mode = static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value() & 07777);
  FsIdentity as_root(uid, gid);
  if (!as_root.ok()) return ThrowErrno(env, "setfsuid", EPERM);
  int fd = Openat2(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, mode);
  if (fd < 0) return ThrowErrno(env, "openat2", errno);
  return Napi::Number::New(env, fd);
}

// mkdirAt(dirFd, name, mode, uid, gid) -> true when made, false when name exists already.
Napi::Value MkdirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "mkdirAt(dirFd, name, mode, uid, gid)";
  int dir_fd = -1;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!DirNameArgs(info, 5, usage, &dir_fd, &name) || !OwnerArgs(info, 3, usage, &uid, &gid)) return env.Undefined();
  if (!info[2].IsNumber()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  mode_t mode = static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value() & 07777);
  FsIdentity as_root(uid, gid);
  if (!as_root.ok()) return ThrowErrno(env, "setfsuid", EPERM);
  if (mkdirat(dir_fd, name.c_str(), mode) < 0) {
    if (errno == EEXIST) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, "mkdirat", errno);
  }
  return Napi::Boolean::New(env, true);
}

// symlinkAt(dirFd, name, target, uid, gid): a new symlink. Its target is only text,
// resolved inside the container's root whenever it is followed (here or by the container).
Napi::Value SymlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "symlinkAt(dirFd, name, target, uid, gid)";
  int dir_fd = -1;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!DirNameArgs(info, 5, usage, &dir_fd, &name) || !OwnerArgs(info, 3, usage, &uid, &gid)) return env.Undefined();
  if (!info[2].IsString()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  std::string target = info[2].As<Napi::String>().Utf8Value();
  if (!ValidPath(target)) {
    ThrowRangeError(env, "target must be 1..4096 bytes without NUL");
    return env.Undefined();
  }
  FsIdentity as_root(uid, gid);
  if (!as_root.ok()) return ThrowErrno(env, "setfsuid", EPERM);
  if (symlinkat(target.c_str(), dir_fd, name.c_str()) < 0) return ThrowErrno(env, "symlinkat", errno);
  return env.Undefined();
}

// renameAt(dirFd, from, to, uid, gid): replaces the entry `to` (a file, or a symlink
// itself: never what it points to) with `from`, both names in dirFd.
Napi::Value RenameAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "renameAt(dirFd, from, to, uid, gid)";
  int dir_fd = -1;
  std::string from;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!DirNameArgs(info, 5, usage, &dir_fd, &from) || !OwnerArgs(info, 3, usage, &uid, &gid)) return env.Undefined();
  if (!info[2].IsString()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  std::string to = info[2].As<Napi::String>().Utf8Value();
  if (!ValidName(to)) {
    ThrowRangeError(env, "name must be one path component");
    return env.Undefined();
  }
  FsIdentity as_root(uid, gid);
  if (!as_root.ok()) return ThrowErrno(env, "setfsuid", EPERM);
  if (renameat(dir_fd, from.c_str(), dir_fd, to.c_str()) < 0) return ThrowErrno(env, "renameat", errno);
  return env.Undefined();
}

// unlinkAt(dirFd, name, uid, gid): removes a non-directory entry; true when removed,
// false when there was none.
Napi::Value UnlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "unlinkAt(dirFd, name, uid, gid)";
  int dir_fd = -1;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!DirNameArgs(info, 4, usage, &dir_fd, &name) || !OwnerArgs(info, 2, usage, &uid, &gid)) return env.Undefined();
  FsIdentity as_root(uid, gid);
  if (!as_root.ok()) return ThrowErrno(env, "setfsuid", EPERM);
  if (unlinkat(dir_fd, name.c_str(), 0) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, "unlinkat", errno);
  }
  return Napi::Boolean::New(env, true);
}

struct NetnsConnect {
  int pidfd;
  int port;
  int fd;
  int err;
  const char* syscall_name;
};

// Loopback completes the handshake inside connect() when the listener has room in its
// backlog; a listener that never accepts (a full backlog drops the SYN) is given up on
// after this long.
constexpr int kNetnsConnectTimeoutMs = 1000;

// One non-blocking connect to addr in the calling thread's network namespace: the fd, or
// -1 with errno and *syscall_name set.
int ConnectLoopback(const struct sockaddr* addr, socklen_t len, const char** syscall_name) {
  *syscall_name = "socket";
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  *syscall_name = "connect";
  if (connect(fd, addr, len) == 0) return fd;
  if (errno == EINPROGRESS) {
    struct pollfd pfd = {fd, POLLOUT, 0};
    int r;
    do {
      r = poll(&pfd, 1, kNetnsConnectTimeoutMs);
    } while (r < 0 && errno == EINTR);
    int soerr = 0;
    socklen_t soerr_len = sizeof(soerr);
    if (r == 0) {
      errno = ETIMEDOUT;
    } else if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0) {
      if (soerr == 0) return fd;
      errno = soerr;
    }
  }
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

// On a thread of its own that ends right after (see UtsLookupThread): a socket belongs
// to the network namespace of the thread that creates it, for its whole life, so the fd
// handed back to Node talks inside the container while no Node thread ever moved.
void* NetnsConnectThread(void* arg) {
  auto* job = static_cast<NetnsConnect*>(arg);
  if (setns(job->pidfd, CLONE_NEWNET) < 0) {
    job->err = errno;
    job->syscall_name = "setns";
    return nullptr;
  }
  struct sockaddr_in v4;
  memset(&v4, 0, sizeof(v4));
  v4.sin_family = AF_INET;
  v4.sin_port = htons(static_cast<uint16_t>(job->port));
  v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  job->fd = ConnectLoopback(reinterpret_cast<struct sockaddr*>(&v4), sizeof(v4), &job->syscall_name);
  if (job->fd >= 0) return nullptr;
  job->err = errno;
  // A server listening on [::1] only (or IPV6_V6ONLY on ::) refuses 127.0.0.1; any other
  // failure (a full backlog's timeout) is the answer.
  if (job->err != ECONNREFUSED) return nullptr;
  struct sockaddr_in6 v6;
  memset(&v6, 0, sizeof(v6));
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(static_cast<uint16_t>(job->port));
  v6.sin6_addr = in6addr_loopback;
  const char* v4_syscall = job->syscall_name;
  job->fd = ConnectLoopback(reinterpret_cast<struct sockaddr*>(&v6), sizeof(v6), &job->syscall_name);
  if (job->fd >= 0) return nullptr;
  // No IPv6 in the namespace (disabled, no ::1) says nothing about the port: refused.
  if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL || errno == ENETUNREACH) {
    job->syscall_name = v4_syscall;
    return nullptr;
  }
  job->err = errno;
  return nullptr;
}

// The listening TCP ports of a network namespace come from the kernel's sock_diag
// netlink, asked for sockets in LISTEN only, as `ss -ltn` asks. Reading /proc/PID/net/tcp
// instead walks the whole established-socket hash, which a new namespace shares with the
// host (sized by the host's memory): about 2 ms of kernel time per file with nothing in
// it, for each container at each stats tick. The LISTEN-only dump walks just the
// listening hash.
constexpr int kMaxListeningRecords = 16384;

struct NetnsDiagSocket {
  int pidfd;
  int fd;
  int err;
  const char* syscall_name;
};

// On a thread of its own that ends right after (see UtsLookupThread): the socket belongs
// to the namespace it was made in for its whole life.
void* NetnsDiagSocketThread(void* arg) {
  auto* job = static_cast<NetnsDiagSocket*>(arg);
  if (setns(job->pidfd, CLONE_NEWNET) < 0) {
    job->err = errno;
    return nullptr;
  }
  job->syscall_name = "socket";
  job->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (job->fd < 0) job->err = errno;
  return nullptr;
}

// One LISTEN-only dump of family's TCP sockets on fd, each port marked in seen. Returns 0,
// or an errno (EAFNOSUPPORT/ENOENT from the kernel: the family is not there).
int DumpListening(int fd, uint8_t family, uint32_t seq, std::vector<bool>* seen, int* records) {
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } message;
  memset(&message, 0, sizeof(message));
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = seq;
  message.request.sdiag_family = family;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1U << 10;  // TCP_LISTEN
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &message, sizeof(message), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return errno;
  }
  alignas(struct nlmsghdr) char buffer[32768];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EPROTO;
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buffer); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? -e->error : EPROTO;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
        continue;
      }
      auto* socket_message = static_cast<struct inet_diag_msg*>(NLMSG_DATA(h));
      uint16_t port = ntohs(socket_message->id.idiag_sport);
      if (port != 0) (*seen)[port] = true;
      // A namespace with a great many listeners (SO_REUSEPORT) is read only so far: the
      // dump is the server's time, and the ports seen so far are the answer.
      if (++*records >= kMaxListeningRecords) return 0;
    }
  }
}

// listeningTcpPorts(pid, startTime) -> the TCP ports in LISTEN in that process's network
// namespace (IPv4 and IPv6, each once, ascending), or null when the process with this
// start time is gone.
Napi::Value ListeningTcpPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cleanup_fd int pidfd = PidfdOfArgs(info, "listeningTcpPorts(pid, startTime)");
  if (pidfd == kPidfdThrown) return env.Undefined();
  if (pidfd == kPidfdGone) return env.Null();
  NetnsDiagSocket job = {pidfd, -1, 0, "setns"};
  int err = RunOnOwnThread(NetnsDiagSocketThread, &job);
  if (err != 0) return ThrowErrno(env, "pthread_create", err);
  if (job.err == ESRCH) return env.Null();
  if (job.err != 0) return ThrowErrno(env, job.syscall_name, job.err);
  cleanup_fd int fd = job.fd;
  // The kernel answers a dump as it is read; the timeout only guards against a kernel
  // that never says it is done.
  struct timeval timeout = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::vector<bool> seen(65536, false);
  int records = 0;
  err = DumpListening(fd, AF_INET, 1, &seen, &records);
  if (err != 0) return ThrowErrno(env, "sock_diag", err);
  if (records < kMaxListeningRecords) {
    err = DumpListening(fd, AF_INET6, 2, &seen, &records);
    // A kernel without IPv6 has no AF_INET6 handler.
    if (err != 0 && err != EAFNOSUPPORT && err != ENOENT) return ThrowErrno(env, "sock_diag", err);
  }
  Napi::Array ports = Napi::Array::New(env);
  uint32_t count = 0;
  for (uint32_t port = 1; port < 65536; port++) {
    if (seen[port]) ports.Set(count++, Napi::Number::New(env, port));
  }
  return ports;
}

// The connect runs on a thread of its own, never the event loop's (a listener that does
// not accept would hold it) nor libuv's pool (a student's server could then starve the
// server's file reads); the result comes back through a thread-safe function.
struct AsyncNetnsConnect {
  NetnsConnect job;
  Napi::ThreadSafeFunction done;
};

void DeliverNetnsConnect(Napi::Env env, Napi::Function callback, AsyncNetnsConnect* request) {
  NetnsConnect job = request->job;
  delete request;
  if (env == nullptr || callback.IsEmpty()) {
    if (job.fd >= 0) close(job.fd);
    return;
  }
  if (job.fd >= 0) {
    callback.Call({env.Null(), Napi::Number::New(env, job.fd)});
  } else if (job.err == ESRCH) {
    callback.Call({env.Null(), env.Null()});
  } else {
    const char* name = strerrorname_np(job.err);
    Napi::Error e = Napi::Error::New(env, std::string(job.syscall_name) + ": " + strerror(job.err));
    e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
    e.Set("errno", Napi::Number::New(env, job.err));
    e.Set("syscall", Napi::String::New(env, job.syscall_name));
    callback.Call({e.Value(), env.Null()});
  }
}

void* AsyncNetnsConnectThread(void* arg) {
  auto* request = static_cast<AsyncNetnsConnect*>(arg);
  NetnsConnectThread(&request->job);
  close(request->job.pidfd);
  request->job.pidfd = -1;
  Napi::ThreadSafeFunction done = request->done;
  if (done.BlockingCall(request, DeliverNetnsConnect) != napi_ok) {
    // The environment is going away: nobody will take the fd.
    if (request->job.fd >= 0) close(request->job.fd);
    delete request;
  }
  done.Release();
  return nullptr;
}

// connectInNetns(pid, startTime, port, done(err, fd)) -> true when started, false when
// the process with this start time is gone. done gets a connected TCP socket fd
// (non-blocking, close-on-exec, the caller's to close) to 127.0.0.1:port, else
// [::1]:port, made inside that process's network namespace; or null when the process
// went meanwhile; or an error: ECONNREFUSED when nothing listens there, ETIMEDOUT when
// the listener does not answer within a second. The server reaches the port without
// any route from the host to the container's addresses.
Napi::Value ConnectInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = 0;
  unsigned long long expected = 0;
  const char* usage = "connectInNetns(pid, startTime, port, done)";
  if (!ProcessArgs(info, 4, usage, &pid, &expected)) return env.Undefined();
  if (!info[2].IsNumber() || !info[3].IsFunction()) {
    ThrowTypeError(env, usage);
    return env.Undefined();
  }
  int port = info[2].As<Napi::Number>().Int32Value();
  if (port < 1 || port > 65535) {
    ThrowRangeError(env, "port must be 1..65535");
    return env.Undefined();
  }
  int pidfd = PinnedPidfd(pid, expected);
  if (pidfd == -1) return Napi::Boolean::New(env, false);
  if (pidfd < 0) return ThrowErrno(env, "pidfd_open", errno);
  auto* request = new AsyncNetnsConnect();
  request->job = {pidfd, port, -1, 0, "setns"};
  request->done = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "connectInNetns", 0, 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, AsyncNetnsConnectThread, request);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    request->done.Release();
    close(pidfd);
    delete request;
    return ThrowErrno(env, "pthread_create", err);
  }
  return Napi::Boolean::New(env, true);
}

// overlayWhiteout(dir, name): makes dir/name an overlayfs whiteout (a character device
// 0/0), which hides name in the layers below; overlayOpaque(dir): marks dir opaque
// (nothing below shows through it). Both for the image store's unpacked layers, which
// the launcher stacks as overlay lowers. The opaque mark is written twice: trusted.* is
// read by an overlay mounted in the host's user namespace, user.* by one mounted with
// userxattr inside a container's. dir is opened O_NOFOLLOW (the caller verified its
// parents: the store's layer directories have no other writer) and name may not leave it.
Napi::Value OverlayWhiteout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    ThrowTypeError(env, "overlayWhiteout(dir, name)");
    return env.Undefined();
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || dir.find('\0') != std::string::npos) {
    ThrowRangeError(env, "name must be one path component");
    return env.Undefined();
  }
  cleanup_fd int dirfd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) return ThrowErrno(env, "open", errno);
  if (mknodat(dirfd, name.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) return ThrowErrno(env, "mknodat", errno);
  return env.Undefined();
}

Napi::Value OverlayOpaque(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowTypeError(env, "overlayOpaque(dir)");
    return env.Undefined();
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  if (dir.find('\0') != std::string::npos) {
    ThrowRangeError(env, "dir must not contain NUL");
    return env.Undefined();
  }
  cleanup_fd int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open", errno);
  if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0) return ThrowErrno(env, "fsetxattr", errno);
  if (fsetxattr(fd, "user.overlay.opaque", "y", 1, 0) < 0) return ThrowErrno(env, "fsetxattr", errno);
  return env.Undefined();
}

// setFileCapability(fd, value): writes value as fd's security.capability, for the image
// store's unpack of a layer's file capabilities (Node has no setxattr). As host root with
// no idmap the kernel keeps it as given: a v2 value names the filesystem's root, which the
// layer's idmapped mount shows as the container's root; a v3 value keeps its rootid. The
// caller checks the value's form; the kernel checks it again (EINVAL).
Napi::Value SetFileCapability(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    ThrowTypeError(env, "setFileCapability(fd, value)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> value = info[1].As<Napi::Buffer<uint8_t>>();
  if (fsetxattr(fd, "security.capability", value.Data(), value.Length(), 0) < 0)
    return ThrowErrno(env, "fsetxattr", errno);
  return env.Undefined();
}

// The fd number at which the run launcher keeps its container's upper layer:
// MD_LAYER_KEEP_FD in native/src/launcher/launcher.h.
constexpr int kLayerKeepFd = 64;
constexpr long kTmpfsMagic = 0x01021994L;

// takeContainerLayer(launcherPid, startTime) -> fd, or null when that launcher is gone.
// The fd (ours to close, close-on-exec, open for reading) is the container's upper layer:
// the overlay's upper/ on the layer tmpfs, which has no path on the host. It is taken
// from the run launcher (pinned by its start time) with pidfd_getfd, which asks
// PTRACE_MODE_ATTACH of host root over a non-dumpable launcher of the host's user
// namespace. EBADF: the launcher keeps no layer (a --rootfs, or its root not built yet);
// ENOTDIR/EXDEV: what it keeps is not a directory on a tmpfs (never handed out).
Napi::Value TakeContainerLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t pid = 0;
  unsigned long long expected = 0;
  if (!ProcessArgs(info, 2, "takeContainerLayer(launcherPid, startTime)", &pid, &expected)) return env.Undefined();
  cleanup_fd int pidfd = PinnedPidfd(pid, expected);
  if (pidfd == -1) return env.Null();
  if (pidfd < 0) return ThrowErrno(env, "pidfd_open", errno);
  cleanup_fd int kept = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, kLayerKeepFd, 0));
  if (kept < 0) {
    if (errno == ESRCH) return env.Null();
    return ThrowErrno(env, "pidfd_getfd", errno);
  }
  struct stat st;
  struct statfs fs;
  if (fstat(kept, &st) < 0) return ThrowErrno(env, "fstat", errno);
  if (!S_ISDIR(st.st_mode)) return ThrowErrno(env, "fstat", ENOTDIR);
  if (fstatfs(kept, &fs) < 0) return ThrowErrno(env, "fstatfs", errno);
  if (fs.f_type != kTmpfsMagic) return ThrowErrno(env, "fstatfs", EXDEV);
  // The launcher's fd is O_PATH; the same inode reopened through our own fd link reads.
  char self[64];
  snprintf(self, sizeof(self), "/proc/self/fd/%d", kept);
  int fd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open", errno);
  return Napi::Number::New(env, fd);
}

// The extended attributes of name in dir_fd, never through a symlink: l*xattr on our own
// /proc/self/fd link to the directory plus one name (the link is ours; the name is one
// component the kernel does not follow). Values over 64 KiB do not exist on Linux.
Napi::Object EntryXattrs(Napi::Env env, int dir_fd, const char* name) {
  Napi::Object out = Napi::Object::New(env);
  char path[4096 + 64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir_fd, name);
  std::vector<char> names(65536);
  ssize_t len = llistxattr(path, names.data(), names.size());
  if (len <= 0) return out;
  std::vector<char> value(65536);
  for (ssize_t i = 0; i < len;) {
    const char* key = names.data() + i;
    size_t key_len = strnlen(key, static_cast<size_t>(len - i));
    i += static_cast<ssize_t>(key_len) + 1;
    ssize_t n = lgetxattr(path, key, value.data(), value.size());
    if (n < 0) continue;  // removed since the listing
    out.Set(key, Napi::Buffer<char>::Copy(env, value.data(), static_cast<size_t>(n)));
  }
  return out;
}

// listLayerDir(dirFd, maxEntries) -> { entries, truncated }: as listDir, for a layer being
// committed: each entry lstat'ed with its kind ("file", "dir", "symlink", "fifo", "char",
// "block", "socket"), permission bits, host uid and gid, size, mtimeMs, ino, nlink, the
// device numbers (rdevMajor, rdevMinor), a symlink's target and every extended attribute.
// Nothing is opened but the directory itself (read through a duplicate, rewound first).
Napi::Value ListLayerDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return ListEntries(info, "listLayerDir(dirFd, maxEntries)", [env](const struct stat& st, int dir, const char* name) {
    const char* kind = S_ISREG(st.st_mode)    ? "file"
                       : S_ISDIR(st.st_mode)  ? "dir"
                       : S_ISLNK(st.st_mode)  ? "symlink"
                       : S_ISFIFO(st.st_mode) ? "fifo"
                       : S_ISCHR(st.st_mode)  ? "char"
                       : S_ISBLK(st.st_mode)  ? "block"
                                              : "socket";
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, name));
    entry.Set("kind", Napi::String::New(env, kind));
    entry.Set("mode", Napi::Number::New(env, st.st_mode & 07777));
    entry.Set("uid", Napi::Number::New(env, st.st_uid));
    entry.Set("gid", Napi::Number::New(env, st.st_gid));
    entry.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
    entry.Set("mtimeMs", Napi::Number::New(env, static_cast<double>(st.st_mtim.tv_sec) * 1000.0 +
                                                    static_cast<double>(st.st_mtim.tv_nsec / 1000000)));
    entry.Set("ino", Napi::Number::New(env, static_cast<double>(st.st_ino)));
    entry.Set("nlink", Napi::Number::New(env, static_cast<double>(st.st_nlink)));
    entry.Set("rdevMajor", Napi::Number::New(env, major(st.st_rdev)));
    entry.Set("rdevMinor", Napi::Number::New(env, minor(st.st_rdev)));
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlinkat(dir, name, target, sizeof(target) - 1);
      if (n < 0) return Napi::Object();  // replaced since the stat: gone from this listing
      entry.Set("target", Napi::String::New(env, target, static_cast<size_t>(n)));
    }
    entry.Set("xattrs", EntryXattrs(env, dir, name));
    return entry;
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("signalProcess", Napi::Function::New(env, SignalProcess));
  exports.Set("startTime", Napi::Function::New(env, StartTime));
  exports.Set("spawnPty", Napi::Function::New(env, SpawnPty));
  exports.Set("spawnPtyAsync", Napi::Function::New(env, SpawnPtyAsync));
  exports.Set("spawnPipedAsync", Napi::Function::New(env, SpawnPipedAsync));
  exports.Set("spawnInherited", Napi::Function::New(env, SpawnInherited));
  exports.Set("resizePty", Napi::Function::New(env, ResizePty));
  exports.Set("watchExit", Napi::Function::New(env, WatchExit));
  exports.Set("sealedCopy", Napi::Function::New(env, SealedCopy));
  exports.Set("raiseOpenFilesLimit", Napi::Function::New(env, RaiseOpenFilesLimit));
  exports.Set("isTerminal", Napi::Function::New(env, IsTerminal));
  exports.Set("replaceProcess", Napi::Function::New(env, ReplaceProcess));
  exports.Set("utsHostname", Napi::Function::New(env, UtsHostname));
  exports.Set("readFileInRoot", Napi::Function::New(env, ReadFileInRoot));
  exports.Set("listeningTcpPorts", Napi::Function::New(env, ListeningTcpPorts));
  exports.Set("connectInNetns", Napi::Function::New(env, ConnectInNetns));
  exports.Set("openRoot", Napi::Function::New(env, OpenRoot));
  exports.Set("openInRoot", Napi::Function::New(env, OpenInRoot));
  exports.Set("listDir", Napi::Function::New(env, ListDir));
  exports.Set("createAt", Napi::Function::New(env, CreateAt));
  exports.Set("mkdirAt", Napi::Function::New(env, MkdirAt));
  exports.Set("symlinkAt", Napi::Function::New(env, SymlinkAt));
  exports.Set("renameAt", Napi::Function::New(env, RenameAt));
  exports.Set("unlinkAt", Napi::Function::New(env, UnlinkAt));
  exports.Set("overlayWhiteout", Napi::Function::New(env, OverlayWhiteout));
  exports.Set("overlayOpaque", Napi::Function::New(env, OverlayOpaque));
  exports.Set("setFileCapability", Napi::Function::New(env, SetFileCapability));
  exports.Set("takeContainerLayer", Napi::Function::New(env, TakeContainerLayer));
  exports.Set("listLayerDir", Napi::Function::New(env, ListLayerDir));
  return exports;
}

}  // namespace

NODE_API_MODULE(mdocker_native, Init)
